"""The Redis sink: pure write plans, and idempotent, order-safe writes into the real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from resources.kafka import KafkaResource
from resources.redis import RedisResource
from streaming.flink import redis_sink


def viewers(title: str, end: str, count: int) -> dict:
    return {
        "kind": "concurrent_viewers",
        "title_id": title,
        "window_start": end.replace(":01:", ":00:"),
        "window_end": end,
        "viewers": count,
    }


def alert(title: str) -> dict:
    return {
        "alert_id": "a" * 32,
        "kind": "qoe_alert",
        "title_id": title,
        "device": "tv",
        "cdn": "oca",
        "country": "US",
        "window_start": "2026-11-24T20:00:00.000Z",
        "window_end": "2026-11-24T20:05:00.000Z",
        "attempts": 9,
        "breaches": ["error_rate"],
        "startup_p95_ms": None,
        "rebuffer_ratio": 0.0,
        "error_rate": 0.5,
        "avg_bitrate_kbps": 3000.0,
    }


def test_only_events_a_pipeline_dropped_are_kept_as_late() -> None:
    late = {"kind": "late_event", "title_id": "t1", "event_id": "e1", "event_ts": "x"}
    flags = {"dropped_from_qoe": False, "dropped_from_viewers": False, "late_for_viewers": True}
    assert redis_sink.plan_writes({**late, **flags}) == []  # still counted in later windows
    writes = redis_sink.plan_writes({**late, **flags, "dropped_from_viewers": True})
    assert writes == [redis_sink.HashWrite("qoe:v1:late:t1", {"e1": "x"}, redis_sink.LATE_TTL_S)]


def test_plan_writes_key_layout() -> None:
    writes = redis_sink.plan_writes(viewers("t9", "2026-11-24T20:01:00.000Z", 3))
    assert writes[0] == redis_sink.HashWrite(
        "qoe:v1:viewers:t9",
        {
            "title_id": "t9",
            "window_start": "2026-11-24T20:00:00.000Z",
            "window_end": "2026-11-24T20:01:00.000Z",
            "viewers": "3",
        },
        redis_sink.VIEWERS_TTL_S,
        "window_end",
    )
    alert_writes = redis_sink.plan_writes(alert("t9"))
    assert alert_writes[0].key == "qoe:v1:alert:" + "a" * 32
    assert alert_writes[0].fields["breaches"] == '["error_rate"]'
    assert alert_writes[0].fields["startup_p95_ms"] == ""
    assert alert_writes[1] == redis_sink.IndexWrite("qoe:v1:alerts", "a" * 32, 1795550700.0)
    assert redis_sink.plan_writes({"kind": "something-else"}) == []
    with pytest.raises(redis_sink.PoisonRecord, match="not JSON"):
        redis_sink.decode(b"not json")
    with pytest.raises(redis_sink.PoisonRecord, match="not a JSON object"):
        redis_sink.decode(b"[1]")


def test_poison_records_name_their_cause() -> None:
    """A record without the fields its keys need, or nested past any sane depth, is refused
    with a reason (it used to raise KeyError or RecursionError and crash the sink)."""
    with pytest.raises(redis_sink.PoisonRecord, match="without title_id"):
        redis_sink.plan_writes({"kind": "concurrent_viewers", "window_end": "x"})
    with pytest.raises(redis_sink.PoisonRecord, match="without window_end"):
        redis_sink.plan_writes(
            {"kind": "qoe_window", "title_id": "t", "device": "tv"} | {"cdn": "c", "country": "US"}
        )
    late = {"kind": "late_event", "title_id": "t", "event_id": None, "event_ts": "x"}
    assert redis_sink.plan_writes(late) == []  # not kept, so its fields do not matter
    with pytest.raises(redis_sink.PoisonRecord, match="without event_id"):
        redis_sink.plan_writes({**late, "dropped_from_qoe": True})
    with pytest.raises(redis_sink.PoisonRecord, match="not a time"):
        redis_sink.plan_writes({**alert("t"), "window_end": "yesterday"})
    with pytest.raises(redis_sink.PoisonRecord, match="depth"):
        redis_sink.decode(b'{"a":' * 5000 + b"1" + b"}" * 5000)


@pytest.fixture
def title(redis_resource: RedisResource) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis_resource.client()
    client.delete(*client.keys(f"qoe:v1:*{name}*"), "qoe:v1:alert:" + "a" * 32)
    client.zrem("qoe:v1:alerts", "a" * 32)


@pytest.mark.stack
def test_writes_are_idempotent_and_never_go_back_in_time(
    redis_resource: RedisResource, title: str
) -> None:
    client = redis_resource.client()
    newer = viewers(title, "2026-11-24T20:02:00.000Z", 7)
    older = viewers(title, "2026-11-24T20:01:00.000Z", 3)
    for record in (newer, older, newer):
        redis_sink.apply_writes(client, redis_sink.plan_writes(record))
    stored = client.hgetall(f"qoe:v1:viewers:{title}")
    assert stored[b"viewers"] == b"7"
    assert stored[b"window_end"] == b"2026-11-24T20:02:00.000Z"
    assert 0 < client.ttl(f"qoe:v1:viewers:{title}") <= redis_sink.VIEWERS_TTL_S


@pytest.mark.stack
def test_run_consumes_the_topics_into_redis(
    kafka_resource: KafkaResource, redis_resource: RedisResource, title: str
) -> None:
    topic = f"test-qoe-sink-{uuid.uuid4().hex[:8]}"
    kafka_resource.ensure_topics([topic])
    producer = kafka_resource.producer()
    for record in (viewers(title, "2026-11-24T20:01:00.000Z", 3), alert(title)):
        producer.produce(topic, key=title, value=json.dumps(record))
    producer.produce(topic, value=b"\x00 not a record")
    producer.flush(10)

    applied = redis_sink.run(
        kafka_resource.bootstrap_servers,
        redis_resource.url,
        [topic],
        group_id=f"test-sink-{uuid.uuid4().hex[:8]}",
        until_caught_up=True,
    )
    assert applied == 2
    client = redis_resource.client()
    assert client.hget(f"qoe:v1:viewers:{title}", "viewers") == b"3"
    assert client.hget("qoe:v1:alert:" + "a" * 32, "title_id") == title.encode()
    assert client.zscore("qoe:v1:alerts", "a" * 32) == 1795550700.0


@pytest.mark.stack
def test_poison_messages_are_quarantined_and_the_sink_moves_on(
    kafka_resource: KafkaResource, redis_resource: RedisResource, title: str
) -> None:
    topic = f"test-qoe-sink-{uuid.uuid4().hex[:8]}"
    kafka_resource.ensure_topics([topic])
    client = redis_resource.client()
    # A key of the wrong type: Redis itself refuses the writes of a well-formed record.
    client.set(f"qoe:v1:viewers:{title}-taken", "not a hash")
    poison = [
        json.dumps({"kind": "concurrent_viewers", "window_end": "2026-11-24T20:01:00.000Z"}),
        json.dumps({"kind": "qoe_window", "title_id": title}),
        "[" * 100_000 + "]" * 100_000,
        json.dumps(viewers(f"{title}-taken", "2026-11-24T20:01:00.000Z", 1)),
    ]
    producer = kafka_resource.producer()
    producer.produce(topic, value=json.dumps(viewers(title, "2026-11-24T20:01:00.000Z", 3)))
    for value in poison:
        producer.produce(topic, value=value)
    producer.produce(topic, value=json.dumps(alert(title)))
    assert producer.flush(10) == 0

    group = f"test-sink-{uuid.uuid4().hex[:8]}"
    servers, url = kafka_resource.bootstrap_servers, redis_resource.url
    applied = redis_sink.run(servers, url, [topic], group_id=group, until_caught_up=True)
    assert applied == 2  # both good records, the one after the poison included
    assert client.hget(f"qoe:v1:viewers:{title}", "viewers") == b"3"
    assert client.hget("qoe:v1:alert:" + "a" * 32, "title_id") == title.encode()
    entries = [json.loads(e) for e in client.lrange(redis_sink.QUARANTINE, 0, 200)]
    mine = sorted((e for e in entries if e["topic"] == topic), key=lambda e: e["offset"])
    assert [e["offset"] for e in mine] == [1, 2, 3, 4]
    reasons = [e["reason"] for e in mine]
    assert "without title_id" in reasons[0]
    assert "without device" in reasons[1]
    assert "depth limit" in reasons[2] and mine[2]["payload_bytes"] == 200_000
    assert "Redis refused" in reasons[3] and "WRONGTYPE" in reasons[3]
    # The offsets were committed past the poison: a restarted sink has nothing to redo.
    assert redis_sink.run(servers, url, [topic], group_id=group, until_caught_up=True) == 0
    for raw in client.lrange(redis_sink.QUARANTINE, 0, 200):
        if json.loads(raw)["topic"] == topic:
            client.lrem(redis_sink.QUARANTINE, 0, raw)
