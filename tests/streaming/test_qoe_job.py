"""The QoE job end to end: real broker, real Flink (the .venv-flink mini-cluster, bounded reads).

One scenario, run once, with hand-checked expected windows, late events inside and beyond the
allowed lateness, and malformed messages mixed in."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from qoe_testkit import (
    BASE,
    Session,
    chronological,
    expected_viewers,
    ingest_bronze,
    produce,
    read_all,
    reconcile_with_lake,
    run_job,
    ts,
)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

# Watermark = max event time - (5 s + 10 s); windows of 5 min (QoE) and 1 min / 10 s (viewers).
JOB_ARGS = [
    "--startup-mode=earliest-offset",
    "--bounded",
    "--watermark-emit=on-event",
    "--out-of-orderness-ms=5000",
    "--allowed-lateness-ms=10000",
    "--min-attempts=5",
    "--max-error-rate=0.25",
    "--max-startup-p95-ms=4000",
    "--max-rebuffer-ratio=0.02",
    "--min-avg-bitrate-kbps=1500",
    "--restore=none",
    "--checkpoint-interval-ms=1000",
]

MALFORMED = [
    b"not json{",
    b"{}",
    b"null",
    b"[1, 2]",
    b"\xff\xfe\x00garbage",
    b'{"session_id": "m1", "title_id": "t1", "event_type": "start", "event_ts": "garbage"}',
    b'{"session_id": "m2", "event_type": "start", "event_ts": "2026-11-24T20:00:10.000Z"}',
]


def scenario() -> tuple[list[dict[str, Any] | bytes], list[dict[str, Any]]]:
    """(messages in topic order, the valid events the windows must count)."""
    t1 = [Session(f"s{i}", "t1") for i in range(1, 7)]
    main: list[dict[str, Any]] = []
    for session, at, startup, bitrate in zip(
        t1[:4], (0, 1, 2, 3), (800, 1200, 1500, 3000), (3000, 5000, 3000, 5000), strict=True
    ):
        main += session.watch(at, startup, heartbeats=4, bitrate_kbps=bitrate)
    main += [t1[1].event("stall_start", 50), t1[1].event("stall_end", 52, stall_ms=2000)]
    main += [t1[4].event("playback_request", 5), t1[4].event("error", 7, error_code="E1")]

    t2 = [Session(f"v{i}", "t2", device="mobile", cdn="akamai", country="BR") for i in range(5)]
    for session, at, startup in zip(t2[:3], (10, 11, 12), (5000, 6000, 7000), strict=True):
        main += session.watch(at, startup, heartbeats=1, bitrate_kbps=1000)
    main += [t2[3].event("playback_request", 14), t2[3].event("error", 16, error_code="E2")]
    main += [t2[4].event("playback_request", 15), t2[4].event("error", 17, error_code="E2")]

    t3 = [Session(f"w{i}", "t3", device="web", cdn="oca", country="GB") for i in range(3)]
    main += [t3[0].event("playback_request", 20), t3[0].event("error", 21, error_code="E3")]
    main += [t3[1].event("playback_request", 22), t3[1].event("error", 23, error_code="E3")]
    # A field of the wrong type becomes null; the event itself still counts.
    main += [t3[2].event("playback_request", 24, bitrate_kbps="high")]
    main = chronological(main)

    late, driver = Session("L", "tlate"), Session("M", "tlate")
    late_section = [
        late.event("playback_request", 290),
        driver.event("playback_request", 312),  # watermark 20:04:57: window 20:00 still open
        late.event("playback_request", 280),  # behind the watermark, within allowed lateness
        driver.event("playback_request", 320),  # watermark 20:05:05: window 20:00 has closed
        late.event("playback_request", 285, event_id="late-dropped"),
        late.event("heartbeat", 30, event_id="late-hb", bitrate_kbps=3000),
    ]
    tail = t1[5].watch(400, 1000, heartbeats=0, bitrate_kbps=4000)

    messages: list[dict[str, Any] | bytes] = [*main[:5], *MALFORMED, *main[5:]]
    messages += [*late_section, *tail]
    counted = [
        *main,
        *[e for e in late_section if e["event_id"] not in ("late-dropped", "late-hb")],
        *tail,
    ]
    return messages, counted


@pytest.fixture(scope="module")
def scenario_run(
    flink_python: str, bootstrap: str, make_qoe_topics, tmp_path_factory
) -> dict[str, Any]:
    topics = make_qoe_topics()
    messages, counted = scenario()
    produce(bootstrap, topics["events"], messages)
    work: Path = tmp_path_factory.mktemp("qoe-scenario")
    run_job(
        [
            f"--bootstrap-servers={bootstrap}",
            f"--events-topic={topics['events']}",
            f"--aggregates-topic={topics['aggregates']}",
            f"--alerts-topic={topics['alerts']}",
            f"--group-id=qoe-test-{uuid.uuid4().hex[:8]}",
            f"--checkpoint-dir={work / 'checkpoints'}",
            *JOB_ARGS,
        ],
        log=work / "job.log",
    )
    aggregates = read_all(bootstrap, topics["aggregates"])
    return {
        "topics": topics,
        "counted": counted,
        "viewers": [r for r in aggregates if r["kind"] == "concurrent_viewers"],
        "windows": [r for r in aggregates if r["kind"] == "qoe_window"],
        "late": [r for r in aggregates if r["kind"] == "late_event"],
        "alerts": read_all(bootstrap, topics["alerts"]),
    }


def windows_by_key(run: dict[str, Any]) -> dict[tuple[str, str, str, str, str], dict[str, Any]]:
    keyed = {}
    for w in run["windows"]:
        key = (w["title_id"], w["device"], w["cdn"], w["country"], w["window_start"])
        assert key not in keyed, f"window emitted twice: {key}"
        keyed[key] = w
    return keyed


def test_qoe_windows_exact(scenario_run: dict[str, Any]) -> None:
    windows = windows_by_key(scenario_run)
    assert set(windows) == {
        ("t1", "tv", "oca", "US", ts(0)),
        ("t1", "tv", "oca", "US", ts(300)),
        ("t2", "mobile", "akamai", "BR", ts(0)),
        ("t3", "web", "oca", "GB", ts(0)),
        ("tlate", "tv", "oca", "US", ts(0)),
        ("tlate", "tv", "oca", "US", ts(300)),
    }
    t1 = windows[("t1", "tv", "oca", "US", ts(0))]
    assert t1 == {
        "kind": "qoe_window",
        "title_id": "t1",
        "device": "tv",
        "cdn": "oca",
        "country": "US",
        "window_start": "2026-11-24T20:00:00.000Z",
        "window_end": "2026-11-24T20:05:00.000Z",
        "events": 28,
        "attempts": 5,
        "starts": 4,
        "startup_p50_ms": 1350.0,
        "startup_p95_ms": pytest.approx(2775.0),
        "stall_count": 1,
        "stall_ms": 2000,
        "playback_ms": 16 * 30_000,
        "rebuffer_ratio": pytest.approx(2000 / (2000 + 16 * 30_000)),
        "avg_bitrate_kbps": 4000.0,
        "errors": 1,
        "error_rate": 0.2,
    }
    t2 = windows[("t2", "mobile", "akamai", "BR", ts(0))]
    assert (t2["attempts"], t2["starts"], t2["errors"]) == (5, 3, 2)
    assert (t2["startup_p50_ms"], t2["startup_p95_ms"]) == (6000.0, pytest.approx(6900.0))
    assert (t2["rebuffer_ratio"], t2["avg_bitrate_kbps"], t2["error_rate"]) == (0.0, 1000.0, 0.4)
    t3 = windows[("t3", "web", "oca", "GB", ts(0))]
    assert (t3["attempts"], t3["starts"], t3["errors"], t3["events"]) == (3, 0, 2, 5)
    assert t3["startup_p50_ms"] is None and t3["rebuffer_ratio"] is None
    assert t3["error_rate"] == pytest.approx(2 / 3)
    tail = windows[("t1", "tv", "oca", "US", ts(300))]
    assert (tail["attempts"], tail["starts"], tail["startup_p50_ms"]) == (1, 1, 1000.0)


def test_concurrent_viewers_match_reference(scenario_run: dict[str, Any]) -> None:
    got = {(r["title_id"], r["window_start"]): r["viewers"] for r in scenario_run["viewers"]}
    assert len(got) == len(scenario_run["viewers"]), "a viewers window was emitted twice"
    assert got == expected_viewers(scenario_run["counted"])
    assert got[("t1", ts(0))] == 4


def test_late_events_within_allowed_lateness_count_later_ones_are_reported(
    scenario_run: dict[str, Any],
) -> None:
    windows = windows_by_key(scenario_run)
    assert windows[("tlate", "tv", "oca", "US", ts(0))]["attempts"] == 2
    assert windows[("tlate", "tv", "oca", "US", ts(300))]["attempts"] == 2
    late = {r["event_id"]: r for r in scenario_run["late"]}
    assert set(late) == {"late-dropped", "late-hb"}
    assert (
        late["late-dropped"]["dropped_from_qoe"],
        late["late-dropped"]["dropped_from_viewers"],
    ) == (
        True,
        False,
    )
    assert (late["late-hb"]["dropped_from_qoe"], late["late-hb"]["dropped_from_viewers"]) == (
        True,
        True,
    )
    assert late["late-dropped"]["watermark_ts"] == "2026-11-24T20:05:05.000Z"


def test_alerts_only_for_breaching_windows_with_enough_attempts(
    scenario_run: dict[str, Any],
) -> None:
    alerts = scenario_run["alerts"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert["title_id"], alert["device"], alert["cdn"], alert["country"]) == (
        "t2",
        "mobile",
        "akamai",
        "BR",
    )
    assert alert["breaches"] == ["startup_p95_ms", "error_rate", "avg_bitrate_kbps"]
    assert alert["attempts"] == 5 and alert["window_end"] == ts(300)
    assert len(alert["alert_id"]) == 32
    # The alert carries its window's every measurement, the same as the window record.
    window = windows_by_key(scenario_run)[("t2", "mobile", "akamai", "BR", ts(0))]
    for measure in ("events", "starts", "startup_p50_ms", "stall_count", "playback_ms", "errors"):
        assert alert[measure] == window[measure], measure


def test_malformed_messages_do_not_stop_the_job(scenario_run: dict[str, Any]) -> None:
    """The job finished (run_job checks the exit status) and counted every valid event."""
    windows = windows_by_key(scenario_run)
    assert sum(w["events"] for w in windows.values()) == len(scenario_run["counted"])


def test_published_windows_reconcile_with_the_lake(
    scenario_run: dict[str, Any], bootstrap: str, kafka_resource, spark_resource, tmp_path: Path
) -> None:
    """The lake's recomputation over bronze equals every window the stream published, late and
    malformed input included; then a doctored and an invented record are both caught."""
    from resources.object_store import ObjectStoreResource

    topics = scenario_run["topics"]
    resources = {
        "kafka": kafka_resource,
        "spark": spark_resource,
        "object_store": ObjectStoreResource(root=str(tmp_path / "lake")),
    }
    ingest_bronze(topics["events"], resources)
    config = {
        "date": "2026-11-24",
        "events_topic": topics["events"],
        "aggregates_topic": topics["aggregates"],
        # The test's events are dated BASE but were written to Kafka now.
        "arrival_slack_days": (datetime.now(UTC).date() - BASE.date()).days + 1,
    }
    checks = reconcile_with_lake(resources, **config)
    windows, viewers = checks["qoe_aggregates"], checks["concurrent_viewers"]
    assert windows.passed and viewers.passed
    assert windows.metadata["windows_matched"].value == len(scenario_run["windows"]) == 6
    assert viewers.metadata["windows_matched"].value == len(scenario_run["viewers"])
    assert windows.metadata["late_reports_applied"].value == len(scenario_run["late"]) >= 2

    doctored = {**windows_by_key(scenario_run)[("t2", "mobile", "akamai", "BR", ts(0))]}
    doctored["attempts"] = 4
    invented = {**doctored, "title_id": "t-invented"}
    produce(bootstrap, topics["aggregates"], [json.dumps(r).encode() for r in (doctored, invented)])
    checks = reconcile_with_lake(resources, **config)
    caught = checks["qoe_aggregates"]
    assert not caught.passed
    assert caught.metadata["windows_differing"].value == 1
    assert caught.metadata["windows_only_in_stream"].value == 1
    assert "| attempts | 4 | 5 |" in caught.metadata["first_differences"].value
    assert checks["concurrent_viewers"].passed
