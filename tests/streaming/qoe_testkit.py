"""Deterministic viewing events for the QoE job's tests, and helpers to run the job and read its
topics. Events follow the v1 contract; times are offsets in seconds from BASE."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from netflix_assets.clients.kafka import KafkaSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
FLINK_PYTHON = Path(
    os.environ.get("NETFLIX_ASSETS_FLINK_PYTHON", REPO_ROOT / ".venv-flink" / "bin" / "python")
)
BASE = datetime(2026, 11, 24, 20, 0, 0, tzinfo=UTC)


def ts(offset_s: float) -> str:
    moment = BASE + timedelta(seconds=offset_s)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Session:
    """One playback session's dimensions; `event` stamps an event of it."""

    session_id: str
    title_id: str
    device: str = "tv"
    cdn: str = "oca"
    country: str = "US"
    counter: list[int] = field(default_factory=lambda: [0])

    def event(self, event_type: str, at_s: float, **extra: Any) -> dict[str, Any]:
        self.counter[0] += 1
        record = {
            "schema_version": 1,
            "event_id": extra.pop("event_id", f"{self.session_id}-{self.counter[0]}"),
            "session_id": self.session_id,
            "user_id": f"u-{self.session_id}",
            "profile_id": f"p-{self.session_id}",
            "title_id": self.title_id,
            "device": self.device,
            "os": "tizen",
            "country": self.country,
            "cdn": self.cdn,
            "event_type": event_type,
            "event_ts": ts(at_s),
            "position_ms": 0,
            "rendition": None,
            "bitrate_kbps": None,
            "buffer_ms": None,
            "startup_ms": None,
            "stall_ms": None,
            "error_code": None,
        }
        record.update(extra)
        return record

    def watch(
        self, at_s: float, startup_ms: int, heartbeats: int, bitrate_kbps: int
    ) -> list[dict[str, Any]]:
        """playback_request, start after startup_ms, then a heartbeat every 30 s of playback."""
        start_s = at_s + startup_ms / 1000
        events = [
            self.event("playback_request", at_s),
            self.event("start", start_s, startup_ms=startup_ms, bitrate_kbps=bitrate_kbps),
        ]
        for n in range(1, heartbeats + 1):
            events.append(
                self.event(
                    "heartbeat",
                    start_s + 30 * n,
                    position_ms=30_000 * n,
                    bitrate_kbps=bitrate_kbps,
                    rendition="1080p",
                )
            )
        return events


def event_seconds(record: dict[str, Any]) -> float:
    moment = datetime.strptime(record["event_ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (moment - BASE).total_seconds()


def chronological(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=event_seconds)


def expected_viewers(
    events: list[dict[str, Any]], size_s: int = 60, slide_s: int = 10
) -> dict[tuple[str, str], int]:
    """Reference for the HOP windows: (title, window_start) -> distinct viewing sessions."""
    sessions: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in events:
        if e["event_type"] not in ("start", "heartbeat"):
            continue
        at = event_seconds(e)
        last_start = at - (at % slide_s)
        start = last_start - size_s + slide_s
        while start <= last_start:
            sessions[(e["title_id"], ts(start))].add(e["session_id"])
            start += slide_s
    return {key: len(ids) for key, ids in sessions.items()}


def kafka_conf(bootstrap: str) -> dict[str, Any]:
    """librdkafka connection and SASL settings for the broker (netflix_assets.clients.kafka)."""
    return KafkaSettings.from_env(bootstrap_servers=bootstrap).confluent()


def produce(bootstrap: str, topic: str, messages: list[dict[str, Any] | bytes]) -> None:
    """Writes in order to partition 0 (the test topics have one partition)."""
    from confluent_kafka import Producer

    producer = Producer({**kafka_conf(bootstrap), "enable.idempotence": True})
    for message in messages:
        if isinstance(message, bytes):
            producer.produce(topic, value=message, partition=0)
        else:
            producer.produce(
                topic, key=message["session_id"], value=json.dumps(message), partition=0
            )
    producer.flush(30)


def read_all(bootstrap: str, topic: str, read_committed: bool = True) -> list[dict[str, Any]]:
    """Every message of a topic, decoded, read up to its end."""
    from resources.kafka import KafkaResource

    kafka = KafkaResource(bootstrap_servers=bootstrap)
    return [json.loads(v) for v in kafka.read_since(topic, 0, read_committed=read_committed)]


def committed_offset(bootstrap: str, topic: str, group_id: str) -> int:
    """Sum of a group's committed offsets over a topic (the Flink source commits on checkpoint)."""
    consumer = Consumer({**kafka_conf(bootstrap), "group.id": group_id})
    try:
        meta = consumer.list_topics(topic, timeout=10)
        tps = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def job_command(*args: str) -> list[str]:
    return [str(FLINK_PYTHON), "-m", "streaming.qoe_job", *args]


def run_job(args: list[str], log: Path, timeout_s: float = 180) -> None:
    """Runs a bounded job to completion; the log keeps Flink's output for a failure message."""
    with log.open("w") as out:
        result = subprocess.run(
            job_command(*args),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
        )
    if result.returncode != 0:
        raise AssertionError(f"qoe_job exited {result.returncode}:\n{log.read_text()[-4000:]}")


def start_job(args: list[str], log: Path) -> subprocess.Popen:
    """An unbounded job in its own process group, so the JVM it starts dies with it."""
    return subprocess.Popen(
        job_command(*args),
        cwd=REPO_ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_job(proc: subprocess.Popen) -> None:
    """SIGKILL to the job's process group: no clean shutdown, as in a crash."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def wait_for(condition, timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"qoe_job exited {proc.returncode} while waiting for {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def ingest_bronze(topic: str, resources: dict[str, Any]) -> None:
    """The topic into the lake's bronze table, through the bronze asset itself."""
    from dagster import DagsterInstance, materialize

    from assets.lake import bronze_viewing_events

    result = materialize(
        [bronze_viewing_events],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"bronze_viewing_events": {"config": {"topic": topic}}}},
    )
    assert result.success


def reconcile_with_lake(resources: dict[str, Any], **config: Any) -> dict[str, Any]:
    """Runs stream_reconciliation_job in process; asset name -> its check's evaluation."""
    from dagster import DagsterInstance, Definitions

    from assets import streaming

    defs = Definitions(
        assets=streaming.ASSETS,
        asset_checks=streaming.CHECKS,
        jobs=streaming.JOBS,
        resources=resources,
    )
    result = defs.resolve_job_def("stream_reconciliation_job").execute_in_process(
        run_config={"ops": {"stream_matches_lake": {"config": config}}},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
