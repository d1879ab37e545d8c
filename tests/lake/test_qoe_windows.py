"""The stream's QoE windows recomputed by Spark from bronze rows: exact values on hand-made
events, with the same figures as the Flink job's own test (p50 1350 / p95 2775 from
800/1200/1500/3000 ms), and the stream's input rules: what it drops is dropped, what it counts
(a duplicate, an unknown type, a missing device) is counted, late copies come out one by one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from spark_jobs.qoe_windows import (
    concurrent_viewers,
    qoe_windows,
    stream_events,
)

BASE = datetime(2026, 11, 24, 20, 0, 0, tzinfo=UTC)


def event(n: int, session: str, event_type: str, at_s: float, **extra) -> dict:
    moment = BASE + timedelta(seconds=at_s)
    record = {
        "schema_version": 1,
        "event_id": f"{session}-{n}",
        "session_id": session,
        "user_id": f"u-{session}",
        "profile_id": f"p-{session}",
        "title_id": "t1",
        "device": "tv",
        "os": "tizen",
        "country": "US",
        "cdn": "oca",
        "event_type": event_type,
        "event_ts": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "position_ms": 0,
    }
    record.update(extra)
    return record


def scenario() -> list[str]:
    """Four sessions in the first 5-minute window, one stall, one error and an event of an
    unknown type; in the second, a web session, a web heartbeat with a wrong-typed position and
    a session without a device; a duplicate; and what the stream drops: not JSON, no title, a
    clock in 2099."""
    values = []
    for n, startup in enumerate((800, 1200, 1500, 3000)):
        s = f"s{n}"
        values += [
            event(1, s, "playback_request", 10 * n),
            event(2, s, "start", 10 * n + startup / 1000, startup_ms=startup, bitrate_kbps=3000),
            event(3, s, "heartbeat", 10 * n + 31, bitrate_kbps=1000 * (n + 1)),
        ]
    values += [
        event(4, "s1", "stall_end", 50, stall_ms=2000),
        event(1, "s9", "playback_request", 60),
        event(2, "s9", "error", 61, error_code="E1"),
        event(5, "s1", "teleport", 55),
        {**event(1, "s5", "heartbeat", 320, bitrate_kbps=500), "device": "web"},
        {
            **event(1, "s8", "heartbeat", 340, bitrate_kbps=900, position_ms="twelve"),
            "device": "web",
        },
        {**event(1, "s6", "heartbeat", 350, bitrate_kbps=700), "device": None},
        {**event(1, "s7", "heartbeat", 100), "title_id": None},
        {**event(2, "s7", "heartbeat", 110), "event_ts": "2099-01-01T00:00:00.000Z"},
    ]
    texts = [json.dumps(v) for v in values]
    texts.append(texts[2])  # s0's heartbeat delivered twice
    return [*texts, "not json"]


@pytest.fixture(scope="module")
def events(spark):
    kafka_ts = BASE + timedelta(seconds=1)
    rows = [
        ("k", text, "viewing-events", 0, offset, kafka_ts, kafka_ts.date())
        for offset, text in enumerate(scenario())
    ]
    bronze = spark.createDataFrame(
        rows,
        "key string, value string, topic string, partition int, offset long, "
        "kafka_ts timestamp, kafka_date date",
    )
    return stream_events(bronze).cache()


def by_window(frame) -> dict[tuple[str, str], dict]:
    return {(r["device"], r["window_start"]): r.asDict() for r in frame.collect()}


def test_qoe_windows_exact(events) -> None:
    windows = by_window(qoe_windows(events))
    assert set(windows) == {
        ("tv", "2026-11-24T20:00:00.000Z"),
        ("web", "2026-11-24T20:05:00.000Z"),
        ("unknown", "2026-11-24T20:05:00.000Z"),
    }
    first = windows[("tv", "2026-11-24T20:00:00.000Z")]
    assert first["window_end"] == "2026-11-24T20:05:00.000Z"
    assert (first["events"], first["attempts"], first["starts"], first["errors"]) == (17, 5, 4, 1)
    assert (first["startup_p50_ms"], first["startup_p95_ms"]) == pytest.approx((1350.0, 2775.0))
    # Heartbeats at 1000, 1000 (the duplicate), 2000, 3000, 4000 kbps, each 30 s of playback.
    assert first["playback_ms"] == 150_000
    assert first["avg_bitrate_kbps"] == pytest.approx(2200.0)
    assert (first["stall_count"], first["stall_ms"]) == (1, 2000)
    assert first["rebuffer_ratio"] == pytest.approx(2000 / 152_000)
    assert first["error_rate"] == pytest.approx(1 / 5)
    web = windows[("web", "2026-11-24T20:05:00.000Z")]
    assert (web["attempts"], web["error_rate"], web["startup_p50_ms"]) == (0, None, None)
    assert (web["events"], web["avg_bitrate_kbps"]) == (2, 700.0)
    unknown = windows[("unknown", "2026-11-24T20:05:00.000Z")]
    assert (unknown["cdn"], unknown["events"], unknown["avg_bitrate_kbps"]) == ("oca", 1, 700.0)


def test_concurrent_viewers_slide(events) -> None:
    viewers = {r["window_start"]: r["viewers"] for r in concurrent_viewers(events).collect()}
    # Starts at 0.8-33 s and heartbeats at 31-61 s: the window [-20 s, 40 s) holds all four.
    assert viewers["2026-11-24T19:59:40.000Z"] == 4
    assert viewers["2026-11-24T19:59:10.000Z"] == 1  # [-50 s, 10 s): only s0's start at 0.8 s
    assert "2026-11-24T19:59:00.000Z" not in viewers  # [-60 s, 0 s) holds no event
    assert viewers["2026-11-24T20:04:30.000Z"] == 1  # s5 alone at 320 s
    assert viewers["2026-11-24T20:05:00.000Z"] == 3  # s5, s8 and the device-less s6
    assert viewers["2026-11-24T20:05:30.000Z"] == 2
    assert max(viewers.values()) == 4


def test_late_copies_leave_only_the_windows_that_had_fired(events) -> None:
    """The stream reported one copy of s0's twice-delivered heartbeat (31 s) and s9's error as
    arriving at watermark 20:05:00: both QoE windows of 20:00 had fired, so one heartbeat still
    counts there; for viewers, only the windows ending by 20:05:00.001 lose that copy."""
    late = [("s0-3", "2026-11-24T20:05:00.000Z"), ("s9-2", "2026-11-24T20:05:00.000Z")]
    first = by_window(qoe_windows(events, late=late))[("tv", "2026-11-24T20:00:00.000Z")]
    assert (first["events"], first["playback_ms"], first["errors"]) == (15, 120_000, 0)
    assert first["avg_bitrate_kbps"] == pytest.approx(2500.0)
    assert by_window(qoe_windows(events, late=[])) == by_window(qoe_windows(events))
    # Twice late: no copy left; reported at an early watermark: nothing left out.
    twice = [("s0-3", "2026-11-24T20:05:00.000Z")] * 2
    assert (
        by_window(qoe_windows(events, late=twice))[("tv", "2026-11-24T20:00:00.000Z")][
            "playback_ms"
        ]
        == 90_000
    )
    early = [("s0-3", "2026-11-24T20:04:59.998Z")]
    assert by_window(qoe_windows(events, late=early)) == by_window(qoe_windows(events))


def test_a_late_heartbeat_leaves_only_the_sliding_windows_that_had_fired(events) -> None:
    """s5's heartbeat at 320 s lies in the windows starting 20:04:30 to 20:05:20; reported late
    at watermark 20:05:40, it is missing from the two ending by then and counted in the rest."""
    late = [("s5-1", "2026-11-24T20:05:40.000Z")]
    full = {r["window_start"]: r["viewers"] for r in concurrent_viewers(events).collect()}
    got = {r["window_start"]: r["viewers"] for r in concurrent_viewers(events, late=late).collect()}
    # [270 s, 330 s) and [280 s, 340 s) held s5 alone and had fired; the later ones had not.
    assert "2026-11-24T20:04:30.000Z" not in got and "2026-11-24T20:04:40.000Z" not in got
    assert full["2026-11-24T20:04:40.000Z"] == 1
    assert got["2026-11-24T20:04:50.000Z"] == full["2026-11-24T20:04:50.000Z"] == 2
    assert got["2026-11-24T20:05:00.000Z"] == full["2026-11-24T20:05:00.000Z"] == 3
