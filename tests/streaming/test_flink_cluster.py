"""The QoE job on a standalone Flink cluster survives losing the TaskManager that runs it.

A JobManager and two TaskManagers (one slot each) from the wheel's distribution run on loopback;
`flink run -py` submits the job (exactly-once, checkpoints every second on the local
filesystem). Once a checkpoint covers the first half of the stream, the TaskManager running the
job is killed with SIGKILL. The JobManager must restart the job on the other TaskManager from
its latest checkpoint; the second half then flows, and the stream's windows must still equal the
lake's recomputation window by window (the reconciliation check), with no window published
twice. Each process also serves Flink's Prometheus reporter.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from qoe_testkit import (
    BASE,
    committed_offset,
    ingest_bronze,
    produce,
    read_all,
    reconcile_with_lake,
    wait_for,
)
from test_qoe_restart import job_args, results, stream

from netflix_assets.settings import HOST
from netflix_assets.stack.flink_cluster import FlinkCluster, free_ports, prometheus_targets
from resources.object_store import ObjectStoreResource

pytestmark = [pytest.mark.stack, pytest.mark.slow]

# Two TaskManagers, a JobManager and the `flink run` client start on a shared 2-core host:
# each step may take minutes there.
STEP_TIMEOUT_S = 420


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=10) as response:
        return response.read().decode()


def test_taskmanager_lost_mid_stream_restores_and_reconciles(
    flink_python: str,
    bootstrap: str,
    make_qoe_topics,
    kafka_resource,
    spark_resource,
    tmp_path: Path,
) -> None:
    first, second, marker = stream()
    topics = make_qoe_topics()
    group = f"qoe-cluster-{uuid.uuid4().hex[:8]}"
    args = [*job_args(bootstrap, topics, tmp_path / "run", group), "--restore=none"]
    produce(bootstrap, topics["events"], first)
    ports = free_ports(taskmanagers=2)
    cluster = FlinkCluster(tmp_path / "flink", ports, slots=1).start(timeout_s=STEP_TIMEOUT_S)
    try:
        job_id = cluster.submit(args)
        wait_for(
            lambda: committed_offset(bootstrap, topics["events"], group) >= len(first),
            STEP_TIMEOUT_S,
            "a checkpoint covering the first half",
        )
        assert read_all(bootstrap, topics["aggregates"]), "no window closed before the kill"
        (victim,) = cluster.taskmanagers_of(job_id)
        before = cluster.checkpoints(job_id)["latest"]["completed"]["id"]
        cluster.kill_taskmanager(victim)
        produce(bootstrap, topics["events"], [*second, marker])

        def restored() -> bool:
            latest = cluster.checkpoints(job_id).get("latest") or {}
            return bool(latest.get("restored")) and cluster.job(job_id).get("state") == "RUNNING"

        wait_for(restored, STEP_TIMEOUT_S, "the job restored from a checkpoint")
        total = len(first) + len(second) + 1
        wait_for(
            lambda: committed_offset(bootstrap, topics["events"], group) >= total,
            STEP_TIMEOUT_S,
            "a checkpoint covering the whole stream after the restart",
        )
        restored_from = cluster.checkpoints(job_id)["latest"]["restored"]
        # A checkpoint after the restart completed, so every task runs: on the other one.
        survivor = cluster.taskmanagers_of(job_id)
        # Results become visible when the checkpoint after them commits its transaction.
        time.sleep(5)
        metrics = scrape(ports.metrics_port())
        survivor_metrics = scrape(ports.metrics_port(int(next(iter(survivor))[3:])))
        cluster.cancel(job_id)
    finally:
        cluster.stop()

    assert survivor and victim not in survivor
    # It restarted from the checkpoint that was newest at the kill (or one completing then).
    assert before <= restored_from["id"] <= before + 2, (restored_from, before)
    assert "flink_jobmanager_numRegisteredTaskManagers" in metrics
    assert "flink_taskmanager_job_task_operator" in survivor_metrics
    assert len(prometheus_targets(ports)[0]["targets"]) == 3

    aggregates = read_all(bootstrap, topics["aggregates"])
    published = results(aggregates)
    assert published and max(published.values()) == 1, "a window was published twice"

    resources = {
        "kafka": kafka_resource,
        "spark": spark_resource,
        "object_store": ObjectStoreResource(root=str(tmp_path / "lake")),
    }
    ingest_bronze(topics["events"], resources)
    checks = reconcile_with_lake(
        resources,
        date=BASE.date().isoformat(),
        events_topic=topics["events"],
        aggregates_topic=topics["aggregates"],
        arrival_slack_days=(datetime.now(UTC).date() - BASE.date()).days + 1,
    )
    for asset, check in checks.items():
        assert check.passed, (asset, check.metadata)
        assert check.metadata["windows_matched"].value > 0, asset
    windows = [r for r in aggregates if r["kind"] == "qoe_window"]
    assert checks["qoe_aggregates"].metadata["windows_matched"].value == len(windows)
    # The stream spans three 5-minute windows; the last two closed only after the restart.
    assert len({w["window_start"] for w in windows}) == 3
