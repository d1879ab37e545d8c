"""Hostile viewing events on their way from bronze to silver: every one is quarantined with a
reason, the valid event beside them is kept, and no row is lost or fails the batch."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from spark_jobs import silver

DAY = date(2026, 11, 24)
KAFKA_TS = datetime(2026, 11, 24, 20, 0, 5, tzinfo=UTC)


def valid(event_id: str) -> dict:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "session_id": "s1",
        "user_id": "u1",
        "profile_id": "p1",
        "title_id": "t1",
        "device": "tv",
        "os": "tizen",
        "country": "US",
        "cdn": "oca",
        "event_type": "heartbeat",
        "event_ts": "2026-11-24T20:00:00.000Z",
        "position_ms": 1000,
    }


HOSTILE: dict[str, str | None] = {
    "deep nesting": '{"event_id": ' + "[" * 5000 + "]" * 5000 + "}",
    "deep nesting in a field": json.dumps(valid("e-deep")).replace('"s1"', "[" * 3000 + "]" * 3000),
    "huge": json.dumps({**valid("e-huge"), "user_id": "u" * 2_000_000}).replace(
        '"position_ms": 1000', '"position_ms": "x"'
    ),
    "not JSON": "{not json",
    "array": "[1, 2, 3]",
    "null bytes": json.dumps(valid("e-nul")).replace('"tv"', '"\u0000tv\u0000"')[:-1],
    "empty": "",
    "tombstone": None,
    "wrong types": json.dumps({**valid("e-types"), "position_ms": {"$gt": ""}}),
    "injection-looking ids": json.dumps(
        {**valid("e-sql'; DROP TABLE x;--"), "schema_version": "1 OR 1=1"}
    ),
    "negative position": json.dumps({**valid("e-neg"), "position_ms": -5}),
    "far future": json.dumps({**valid("e-future"), "event_ts": "2099-01-01T00:00:00.000Z"}),
}


@pytest.mark.slow
def test_hostile_viewing_events_are_quarantined_with_reasons(spark) -> None:
    rows = [(json.dumps(valid("e-good")), 0)] + [
        (value, i + 1) for i, value in enumerate(HOSTILE.values())
    ]
    bronze = spark.createDataFrame(
        [("viewing-events", 0, offset, value, KAFKA_TS, DAY) for value, offset in rows],
        "topic string, partition int, offset long, value string, kafka_ts timestamp, "
        "kafka_date date",
    )
    classified = silver.classify(bronze).select("offset", "event_id", "reason").collect()
    by_offset = {r["offset"]: r for r in classified}
    assert len(by_offset) == len(rows)  # nothing dropped, nothing doubled
    assert by_offset[0]["reason"] is None and by_offset[0]["event_id"] == "e-good"
    reasons = {name: by_offset[i + 1]["reason"] for i, name in enumerate(HOSTILE)}
    assert all(reasons.values()), {k: v for k, v in reasons.items() if not v}
    assert reasons["not JSON"] == "malformed_json"
    assert reasons["deep nesting"] == reasons["deep nesting in a field"] == "malformed_json"
    assert reasons["wrong types"] == "bad_type:position_ms"
    assert reasons["negative position"] == "negative_position"
    assert reasons["far future"] == "far_future_ts"
    assert reasons["injection-looking ids"] == "bad_type:schema_version"
    valid_rows = silver.valid_events(silver.classify(bronze), DAY).collect()
    assert [r["event_id"] for r in valid_rows] == ["e-good"]
    assert silver.quarantined(silver.classify(bronze), DAY).count() == len(HOSTILE)
