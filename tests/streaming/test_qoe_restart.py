"""A QoE job killed mid-stream and restarted from its last checkpoint gives the same closed-window
results as an uninterrupted run (exactly once, with Kafka transactions read committed), and both
equal a batch recomputation by Spark over the lake's bronze copy of the same topic."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from qoe_testkit import (
    BASE,
    Session,
    chronological,
    committed_offset,
    event_seconds,
    ingest_bronze,
    kill_job,
    produce,
    read_all,
    reconcile_with_lake,
    run_job,
    start_job,
    wait_for,
)

from resources.object_store import ObjectStoreResource

pytestmark = [pytest.mark.stack, pytest.mark.slow]

COMMON = [
    "--watermark-emit=on-event",
    "--out-of-orderness-ms=2000",
    "--allowed-lateness-ms=0",
    "--min-attempts=1",
    "--max-startup-p95-ms=2500",
    "--startup-mode=earliest-offset",
    "--delivery=exactly-once",
    "--checkpoint-interval-ms=1000",
]


def stream() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """In-order events over three QoE windows, cut at 450 s (inside the second window), and a
    marker event an hour later whose watermark closes every window."""
    events = []
    for n in range(12):
        title = f"t{n % 3}"
        session = Session(f"r{n}", title, device=("tv", "web")[n % 2])
        events += session.watch(n * 70, 800 + 250 * n, heartbeats=4, bitrate_kbps=2000 + 100 * n)
        if n % 4 == 1:
            events += [
                session.event("stall_start", n * 70 + 40),
                session.event("stall_end", n * 70 + 43, stall_ms=1500 + 100 * n),
            ]
        if n % 5 == 2:
            events += [
                session.event("playback_request", n * 70 + 150),
                session.event("error", n * 70 + 151, error_code="E42"),
            ]
    events = chronological(events)
    first = [e for e in events if event_seconds(e) < 450]
    second = [e for e in events if event_seconds(e) >= 450]
    marker = Session("flush", "__flush__").event("playback_request", 3600)
    return first, second, marker


def results(records: list[dict[str, Any]]) -> Counter:
    """Closed-window results as a multiset (a duplicate would show), without the marker's."""
    return Counter(
        tuple(sorted((k, str(v)) for k, v in r.items()))
        for r in records
        if r["title_id"] != "__flush__"
    )


def job_args(bootstrap: str, topics: dict[str, str], work: Path, group: str) -> list[str]:
    return [
        f"--bootstrap-servers={bootstrap}",
        f"--events-topic={topics['events']}",
        f"--aggregates-topic={topics['aggregates']}",
        f"--alerts-topic={topics['alerts']}",
        f"--group-id={group}",
        f"--transactional-id-prefix={group}",
        f"--checkpoint-dir={work / 'checkpoints'}",
        *COMMON,
    ]


def test_restart_from_checkpoint_matches_uninterrupted_run_and_batch(
    flink_python: str,
    bootstrap: str,
    make_qoe_topics,
    kafka_resource,
    spark_resource,
    tmp_path: Path,
) -> None:
    first, second, marker = stream()

    reference_topics = make_qoe_topics()
    produce(bootstrap, reference_topics["events"], [*first, *second, marker])
    group = f"qoe-ref-{uuid.uuid4().hex[:8]}"
    run_job(
        [*job_args(bootstrap, reference_topics, tmp_path / "ref", group), "--bounded"],
        log=tmp_path / "reference.log",
    )
    expected_aggregates = results(read_all(bootstrap, reference_topics["aggregates"]))
    expected_alerts = results(read_all(bootstrap, reference_topics["alerts"]))
    assert expected_alerts, "the scenario should raise alerts"

    topics = make_qoe_topics()
    group = f"qoe-restart-{uuid.uuid4().hex[:8]}"
    args = job_args(bootstrap, topics, tmp_path / "run", group)
    produce(bootstrap, topics["events"], first)
    job = start_job(args, tmp_path / "before-kill.log")
    try:
        wait_for(
            lambda: committed_offset(bootstrap, topics["events"], group) >= len(first),
            120,
            "a checkpoint covering the first half",
            job,
        )
        assert read_all(bootstrap, topics["aggregates"]), "no window closed before the kill"
    finally:
        kill_job(job)

    produce(bootstrap, topics["events"], [*second, marker])
    job = start_job(args, tmp_path / "after-restart.log")
    try:
        wait_for(
            lambda: (
                results(read_all(bootstrap, topics["aggregates"])) == expected_aggregates
                and results(read_all(bootstrap, topics["alerts"])) == expected_alerts
            ),
            120,
            "the restarted job's results",
            job,
        )
    finally:
        kill_job(job)
    assert "/chk-" in (tmp_path / "after-restart.log").read_text(), "did not restore"

    # The lake's view: bronze from the same topic, the windows recomputed, compared one by one
    # by the stream's reconciliation check (the flush marker's window is still open).
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
    windows = [r for r in read_all(bootstrap, topics["aggregates"]) if r["kind"] == "qoe_window"]
    assert checks["qoe_aggregates"].metadata["windows_matched"].value == len(windows)
    assert any(w["stall_count"] for w in windows) and any(w["errors"] for w in windows)
