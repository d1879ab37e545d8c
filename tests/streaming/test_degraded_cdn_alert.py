"""The streaming path end to end, as a user runs it: simulated viewing with one degraded CDN ->
the QoE job (real Flink mini-cluster, unbounded) -> Kafka -> the Redis sink -> live concurrent
viewers, QoE windows and alerts in Redis, with the alerts on the degraded CDN and not the others.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import redis
from confluent_kafka import Consumer, TopicPartition
from qoe_testkit import (
    REPO_ROOT,
    committed_offset,
    expected_viewers,
    kafka_conf,
    kill_job,
    produce,
    read_all,
    start_job,
    wait_for,
)

from resources.redis import RedisResource
from streaming.simulator import SimConfig, Simulator

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DEGRADED = "akamai"
HEALTHY = "open-connect"
MIN_ATTEMPTS = 8
# A few hundred users on one title, each starting about four sessions within 20 minutes, with
# the simulator's default share of malformed messages (far-future clocks included).
CONFIG = SimConfig(
    users=300,
    titles=1,
    seed=7,
    sessions_per_user_day=4,
    span_minutes=20,
    max_watch_minutes=10,
    degrade_cdn=DEGRADED,
)
# What the job parses into rows it can count: a wrong-typed field becomes null (the row stays), an
# unknown event type is a row no window uses; bad JSON, a missing title and a far-future clock
# are skipped.
PARSED_KINDS = ("valid", "duplicate", "bad_type", "unknown_event_type")
# Default thresholds, except what a small population needs: 10-minute windows and fewer attempts
# per window, so each device x cdn x country has windows that can alert; and an error-rate limit
# above the noise of a small window (one failure in 8 attempts is 12.5 %). The injected
# degradation shows in startup time and stalls, which keep their default limits.
JOB_ARGS = [
    "--startup-mode=earliest-offset",
    "--watermark-emit=on-event",
    "--restore=none",
    "--checkpoint-interval-ms=1000",
    "--qoe-window-ms=600000",
    f"--min-attempts={MIN_ATTEMPTS}",
    "--max-error-rate=0.25",
]


def end_offset(bootstrap: str, topic: str) -> int:
    consumer = Consumer({**kafka_conf(bootstrap), "group.id": "qoe-test-end-offsets"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        )
    finally:
        consumer.close()


def counted_by_viewers(events: list[dict], late: list[dict]) -> list[dict]:
    """The events the viewers windows counted: all but the arrivals the job reported as dropped.
    A late arrival is the last copy of its event_id in topic order (a held event's duplicate is
    sent on time, the event itself later)."""
    dropped = Counter(r["event_id"] for r in late if r["dropped_from_viewers"])
    kept = []
    for event in reversed(events):
        if dropped[event["event_id"]]:
            dropped[event["event_id"]] -= 1
        else:
            kept.append(event)
    return kept[::-1]


def text(hash_: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in hash_.items()}


@pytest.fixture
def redis_db_url(redis_resource: RedisResource) -> Iterator[str]:
    """An empty Redis database of this test's own: the sink's key prefix (qoe:v1) is fixed, so a
    database apart keeps these keys from a running stack's dashboards and theirs from the test."""
    claim, token = "qoe-test:claimed", uuid.uuid4().hex
    for db in range(15, 0, -1):
        url = urlsplit(redis_resource.url)._replace(path=f"/{db}").geturl()
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0 and client.set(claim, token, nx=True, ex=900):
            break
    else:
        pytest.fail("no empty Redis database among 1-15 for the test's qoe:v1 keys")
    yield url
    client.delete(*client.keys("qoe:v1:*"), claim)


@pytest.fixture
def live_run(
    flink_python: str,
    bootstrap: str,
    make_qoe_topics,
    redis_db_url: str,
    tmp_path: Path,
) -> dict[str, Any]:
    """Starts the unbounded job and the Redis sink, simulates into the events topic, waits until
    both have caught up, stops them, and returns the events, the job's output and Redis."""
    topics = make_qoe_topics()
    job_group = f"qoe-e2e-{uuid.uuid4().hex[:8]}"
    sink_group = f"qoe-e2e-sink-{uuid.uuid4().hex[:8]}"
    outputs = [topics["aggregates"], topics["alerts"]]
    job = start_job(
        [
            f"--bootstrap-servers={bootstrap}",
            f"--events-topic={topics['events']}",
            f"--aggregates-topic={topics['aggregates']}",
            f"--alerts-topic={topics['alerts']}",
            f"--group-id={job_group}",
            f"--checkpoint-dir={tmp_path / 'checkpoints'}",
            *JOB_ARGS,
        ],
        tmp_path / "job.log",
    )
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streaming.flink.redis_sink",
            f"--bootstrap-servers={bootstrap}",
            f"--redis-url={redis_db_url}",
            f"--topics={','.join(outputs)}",
            f"--group-id={sink_group}",
        ],
        cwd=REPO_ROOT,
        stdout=(tmp_path / "sink.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # Produced while Flink starts, as `netflix-assets simulate` next to a running stream.
        messages = list(Simulator(CONFIG).messages())
        assert Counter(m.kind for m in messages)["far_future"] > 0  # the case that once broke it
        produce(bootstrap, topics["events"], [m.value for m in messages])
        events = [orjson.loads(m.value) for m in messages if m.kind in PARSED_KINDS]

        def settled() -> bool:
            """The job checkpointed past every event (so it flushed every result they make)
            and after that the sink committed all of both output topics."""
            if sink.poll() is not None:
                raise AssertionError(f"redis_sink exited {sink.returncode}")
            if committed_offset(bootstrap, topics["events"], job_group) < len(messages):
                return False
            return all(
                committed_offset(bootstrap, t, sink_group) >= end_offset(bootstrap, t)
                for t in outputs
            )

        wait_for(settled, 150, "the job and the Redis sink to catch up", job)
    finally:
        kill_job(job)
        kill_job(sink)
    aggregates = read_all(bootstrap, topics["aggregates"])
    return {
        "events": events,
        "viewers": [r for r in aggregates if r["kind"] == "concurrent_viewers"],
        "windows": [r for r in aggregates if r["kind"] == "qoe_window"],
        "late": [r for r in aggregates if r["kind"] == "late_event"],
        "alerts": read_all(bootstrap, topics["alerts"]),
        "redis": redis.Redis.from_url(redis_db_url),
    }


def test_degraded_cdn_raises_alerts_live_in_redis(live_run: dict[str, Any]) -> None:
    client, windows = live_run["redis"], live_run["windows"]

    # Live concurrent viewers: the newest fired window, equal to a count from the events.
    viewers = text(client.hgetall("qoe:v1:viewers:t0"))
    assert viewers, "no concurrent viewers in Redis"
    reference = expected_viewers(counted_by_viewers(live_run["events"], live_run["late"]))
    assert int(viewers["viewers"]) == reference[("t0", viewers["window_start"])] > 0
    assert max(r["viewers"] for r in live_run["viewers"]) >= 50

    # QoE windows: one key per dimension set, holding its newest window as the job emitted it.
    newest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for w in windows:
        key = (w["device"], w["cdn"], w["country"])
        if key not in newest or w["window_end"] > newest[key]["window_end"]:
            newest[key] = w
    assert len(client.keys("qoe:v1:window:t0:*")) == len(newest) > 0
    assert {cdn for _, cdn, _ in newest} == {"open-connect", "akamai", "fastly"}
    for (device, cdn, country), w in newest.items():
        stored = text(client.hgetall(f"qoe:v1:window:t0:{device}:{cdn}:{country}"))
        assert stored["window_end"] == w["window_end"]
        assert int(stored["events"]) == w["events"] > 0
        assert stored["attempts"] == str(w["attempts"])

    # Alerts: in Redis exactly as published, and (all but noise) on the degraded CDN.
    alert_ids = {a["alert_id"] for a in live_run["alerts"]}
    alerts = [text(client.hgetall(key)) for key in client.keys("qoe:v1:alert:*")]
    assert {a["alert_id"] for a in alerts} == alert_ids
    assert {m.decode() for m in client.zrange("qoe:v1:alerts", 0, -1)} == alert_ids
    by_cdn = Counter(a["cdn"] for a in alerts)
    eligible = Counter(w["cdn"] for w in windows if w["attempts"] >= MIN_ATTEMPTS)
    seen = f"alerts per cdn {dict(by_cdn)}, windows with {MIN_ATTEMPTS}+ attempts {dict(eligible)}"
    assert by_cdn[DEGRADED] >= 5, seen
    assert by_cdn[DEGRADED] >= 0.9 * len(alerts), seen
    assert by_cdn[DEGRADED] >= 0.5 * eligible[DEGRADED], seen
    # Not vacuous: the healthy CDN had more windows that could alert than the degraded one.
    assert eligible[HEALTHY] >= 2 * eligible[DEGRADED] and by_cdn[HEALTHY] == 0, seen
    for a in alerts:
        assert int(a["attempts"]) >= MIN_ATTEMPTS and orjson.loads(a["breaches"])
    slow_starts = [a for a in alerts if "startup_p95_ms" in orjson.loads(a["breaches"])]
    assert len(slow_starts) >= 0.8 * by_cdn[DEGRADED], "the 3x startup delay should show"

    meta = text(client.hgetall("qoe:v1:meta"))
    assert meta["last_qoe_window_end"] == max(w["window_end"] for w in windows)
    assert meta["last_alert_window_end"] == max(a["window_end"] for a in live_run["alerts"])
