"""A QoE job killed mid-stream and restarted from its last checkpoint gives the same closed-window
results as an uninterrupted run (exactly once, with Kafka transactions read committed), and both
equal a batch recomputation by Spark over the lake's bronze copy of the same topic."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, materialize
from qoe_testkit import (
    Session,
    chronological,
    committed_offset,
    event_seconds,
    kill_job,
    produce,
    read_all,
    run_job,
    start_job,
    wait_for,
)

from assets.lake import bronze_viewing_events
from resources.object_store import ObjectStoreResource
from spark_jobs.paths import table_uri
from spark_jobs.qoe_windows import concurrent_viewers, qoe_windows, stream_events

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


def closed_windows(records: list[dict[str, Any]], kind: str) -> dict[tuple, dict[str, Any]]:
    """The stream's records of one kind, keyed by their window and dimensions."""
    dims = ("title_id", "device", "cdn", "country") if kind == "qoe_window" else ("title_id",)
    return {
        (*(r[d] for d in dims), r["window_start"]): {k: v for k, v in r.items() if k != "kind"}
        for r in records
        if r["kind"] == kind and r["title_id"] != "__flush__"
    }


def assert_same_window(streamed: dict[str, Any], batch: dict[str, Any], what: tuple) -> None:
    """Equal fields, floats to rounding: JSON and Spark's percentile round differently."""
    floats = {k for k, v in streamed.items() if isinstance(v, float)}
    assert {k: v for k, v in streamed.items() if k not in floats} == {
        k: v for k, v in batch.items() if k not in floats
    }, what
    assert {k: streamed[k] for k in floats} == pytest.approx(
        {k: batch[k] for k in floats}, rel=1e-9
    ), what


def batch_over_bronze(
    topic: str, kafka_resource, spark_resource, spark, tmp_path: Path
) -> dict[str, dict[tuple, dict[str, Any]]]:
    """Ingests the topic with the lake's bronze asset, then recomputes the windows in Spark.
    The flush marker's window never closes in the stream, so it is left out here too."""
    store = ObjectStoreResource(root=str(tmp_path / "lake"))
    result = materialize(
        [bronze_viewing_events],
        resources={"kafka": kafka_resource, "spark": spark_resource, "object_store": store},
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"bronze_viewing_events": {"config": {"topic": topic}}}},
    )
    assert result.success
    events = stream_events(
        spark.read.format("delta").load(table_uri(store, "bronze_viewing_events"))
    )
    return {
        kind: closed_windows([{"kind": kind, **row.asDict()} for row in frame.collect()], kind)
        for kind, frame in (
            ("qoe_window", qoe_windows(events)),
            ("concurrent_viewers", concurrent_viewers(events)),
        )
    }


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
    spark,
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

    streamed = read_all(bootstrap, topics["aggregates"])
    batch = batch_over_bronze(topics["events"], kafka_resource, spark_resource, spark, tmp_path)
    for kind in ("qoe_window", "concurrent_viewers"):
        stream_windows = closed_windows(streamed, kind)
        assert stream_windows, f"the stream published no {kind} record"
        assert stream_windows.keys() == batch[kind].keys(), kind
        for key, record in stream_windows.items():
            assert_same_window(record, batch[kind][key], (kind, key))
    windows = closed_windows(streamed, "qoe_window").values()
    assert any(w["stall_count"] for w in windows) and any(w["errors"] for w in windows)
