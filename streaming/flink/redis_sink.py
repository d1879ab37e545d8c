"""The dashboards' Redis view of the QoE stream: a small consumer of qoe-aggregates and qoe-alerts.

Kept out of Flink on purpose: Flink 2.2 has no Redis connector on Maven Central (Bahir's stops at
Flink 1.x), and a Python sink inside the job would put Python on the hot path. This process reads
the job's committed output instead and writes it idempotently: every write is keyed by its window
and only replaces an older window, so a replay (at-least-once) or an out-of-order message
never moves a dashboard backwards. Offsets are committed after the Redis writes.

Key layout (all under qoe:v1:, hashes unless noted; values are strings, "" for null):
  qoe:v1:viewers:{title_id}                          latest concurrent-viewers window
  qoe:v1:window:{title_id}:{device}:{cdn}:{country}  latest QoE window of the dimension set
  qoe:v1:alert:{alert_id}                            one alert (breaches as a JSON array)
  qoe:v1:alerts                                      sorted set: alert_id scored by window end
  qoe:v1:late:{title_id}                             event_id -> event_ts of events dropped late
  qoe:v1:meta                                        last_{viewers,qoe,alert}_window_end
  qoe:v1:quarantine                                  list: records the sink could not apply, as
                                                     JSON {topic, partition, offset, reason,
                                                     payload}, newest first, last 10,000 kept

A record that cannot be applied (not JSON, nested beyond 1024 levels, a field its kind needs is
missing, Redis refuses its writes) is quarantined with its reason and the sink moves on: one bad
message must not stop the dashboards or restart the sink forever.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import orjson  # noqa: E402

from netflix_assets import settings  # noqa: E402
from schema import topics  # noqa: E402

PREFIX = "qoe:v1"
ALERTS_INDEX = f"{PREFIX}:alerts"
META = f"{PREFIX}:meta"
VIEWERS_TTL_S = 300
WINDOW_TTL_S = 3600
ALERT_TTL_S = 86_400
LATE_TTL_S = 86_400
QUARANTINE = f"{PREFIX}:quarantine"
QUARANTINE_KEEP = 10_000
PAYLOAD_KEEP_BYTES = 4096

# The string fields each kind needs to name its keys; a record without one is poison.
REQUIRED = {
    "concurrent_viewers": ("title_id", "window_end"),
    "qoe_window": ("title_id", "device", "cdn", "country", "window_end"),
    "qoe_alert": ("alert_id", "window_end"),
    "late_event": ("title_id", "event_id", "event_ts"),
}

# Writes the hash only when its order field is not newer than the incoming one (ISO-8601 UTC
# strings of one format compare like the times they name), then refreshes the TTL (0: none).
HSET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and current > ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return 1
"""


@dataclass(frozen=True)
class HashWrite:
    key: str
    fields: dict[str, str]
    ttl_s: int
    # The field that orders writes to this key; None writes unconditionally.
    order_field: str | None = None


@dataclass(frozen=True)
class IndexWrite:
    """A member of a sorted set, scored by epoch seconds."""

    key: str
    member: str
    score: float


def viewers_key(title_id: str) -> str:
    return f"{PREFIX}:viewers:{title_id}"


def window_key(title_id: str, device: str, cdn: str, country: str) -> str:
    return f"{PREFIX}:window:{title_id}:{device}:{cdn}:{country}"


def alert_key(alert_id: str) -> str:
    return f"{PREFIX}:alert:{alert_id}"


def late_key(title_id: str) -> str:
    return f"{PREFIX}:late:{title_id}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _fields(record: dict[str, Any]) -> dict[str, str]:
    return {k: _text(v) for k, v in record.items() if k != "kind"}


def _epoch_s(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


class PoisonRecord(ValueError):
    """A message the sink cannot apply; the message is the reason kept in quarantine."""


def _kept_late(record: dict[str, Any]) -> bool:
    """A late event a whole pipeline dropped; one only late for some viewers windows still
    counted, and is not kept."""
    return bool(record.get("dropped_from_qoe") or record.get("dropped_from_viewers"))


def _check_fields(record: dict[str, Any]) -> None:
    kind = record.get("kind")
    if kind == "late_event" and not _kept_late(record):
        return
    for name in REQUIRED.get(kind, ()):
        value = record.get(name)
        if not isinstance(value, str) or not value:
            raise PoisonRecord(f"{kind} record without {name} (got {value!r:.80})")
    if kind == "qoe_alert":
        try:
            _epoch_s(record["window_end"])
        except ValueError as exc:
            raise PoisonRecord(f"qoe_alert window_end is not a time: {exc}") from exc


def plan_writes(record: dict[str, Any]) -> list[HashWrite | IndexWrite]:
    """The Redis writes one output record becomes; [] for a kind this sink does not keep.
    Raises PoisonRecord when a field its kind needs is missing or malformed."""
    _check_fields(record)
    kind = record.get("kind")
    end = record.get("window_end", "")
    if kind == "concurrent_viewers":
        return [
            HashWrite(
                viewers_key(record["title_id"]), _fields(record), VIEWERS_TTL_S, "window_end"
            ),
            HashWrite(META, {"last_viewers_window_end": end}, 0, "last_viewers_window_end"),
        ]
    if kind == "qoe_window":
        key = window_key(record["title_id"], record["device"], record["cdn"], record["country"])
        return [
            HashWrite(key, _fields(record), WINDOW_TTL_S, "window_end"),
            HashWrite(META, {"last_qoe_window_end": end}, 0, "last_qoe_window_end"),
        ]
    if kind == "qoe_alert":
        return [
            HashWrite(alert_key(record["alert_id"]), _fields(record), ALERT_TTL_S),
            IndexWrite(ALERTS_INDEX, record["alert_id"], _epoch_s(end)),
            HashWrite(META, {"last_alert_window_end": end}, 0, "last_alert_window_end"),
        ]
    if kind == "late_event" and _kept_late(record):
        return [
            HashWrite(
                late_key(record["title_id"]), {record["event_id"]: record["event_ts"]}, LATE_TTL_S
            )
        ]
    return []


def apply_writes(client, writes: list[HashWrite | IndexWrite]) -> None:
    """One round trip for a batch; the script runs atomically per key."""
    script = client.register_script(HSET_IF_NEWER)
    pipe = client.pipeline(transaction=False)
    for w in writes:
        if isinstance(w, IndexWrite):
            pipe.zadd(w.key, {w.member: w.score})
            # Keep a day of alerts in the index, like the alerts themselves.
            pipe.zremrangebyscore(w.key, "-inf", w.score - ALERT_TTL_S)
            continue
        if w.order_field is None:
            pipe.hset(w.key, mapping=w.fields)
            if w.ttl_s:
                pipe.expire(w.key, w.ttl_s)
            continue
        flat = [x for item in w.fields.items() for x in item]
        args = [w.order_field, w.fields[w.order_field], w.ttl_s, *flat]
        script(keys=[w.key], args=args, client=pipe)
    pipe.execute()


def decode(value: bytes | None) -> dict[str, Any]:
    """The record a message holds; PoisonRecord naming why for anything but a JSON object.
    orjson stops at 1024 levels of nesting, where the standard parser hit RecursionError."""
    if not value:
        raise PoisonRecord("empty message")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise PoisonRecord(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise PoisonRecord(f"not a JSON object but {type(record).__name__}")
    return record


def quarantine_entry(message: Any, reason: str) -> bytes:
    """What the quarantine list keeps of a message: where it was, why, and its first 4 KiB."""
    value = message.value() or b""
    return json.dumps(
        {
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "reason": reason,
            "payload": value[:PAYLOAD_KEEP_BYTES].decode("utf-8", "replace"),
            "payload_bytes": len(value),
            "quarantined_at": time.time(),
        }
    ).encode()


def quarantine(client, entries: list[bytes]) -> None:
    if not entries:
        return
    pipe = client.pipeline(transaction=False)
    pipe.lpush(QUARANTINE, *entries)
    pipe.ltrim(QUARANTINE, 0, QUARANTINE_KEEP - 1)
    pipe.execute()


def apply_batch(client, messages: list[Any]) -> tuple[int, list[bytes]]:
    """Apply a batch of messages; returns (records applied, quarantine entries). One round trip
    when every record is good; when Redis refuses the batch, each record is retried alone (the
    writes are idempotent) so only the one Redis refuses is quarantined."""
    import redis

    planned: list[tuple[Any, list[HashWrite | IndexWrite]]] = []
    poison: list[bytes] = []
    for message in messages:
        try:
            planned.append((message, plan_writes(decode(message.value()))))
        except PoisonRecord as exc:
            poison.append(quarantine_entry(message, str(exc)))
    try:
        apply_writes(client, [w for _, writes in planned for w in writes])
        return len(planned), poison
    except redis.ResponseError:
        pass
    applied = 0
    for message, writes in planned:
        try:
            apply_writes(client, writes)
            applied += 1
        except redis.ResponseError as exc:
            poison.append(quarantine_entry(message, f"Redis refused its writes: {exc}"))
    return applied, poison


def run(
    bootstrap_servers: str,
    redis_url: str,
    topic_names: list[str],
    group_id: str,
    until_caught_up: bool = False,
    batch_size: int = 1000,
) -> int:
    """Consumes until stopped (or, with until_caught_up, until no message comes for 2 s).
    Returns how many records it applied."""
    import redis
    from confluent_kafka import Consumer

    from netflix_assets.clients.kafka import KafkaSettings

    client = redis.Redis.from_url(redis_url)
    consumer = Consumer(
        {
            **KafkaSettings.from_env(bootstrap_servers=bootstrap_servers).confluent(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # With the job's exactly-once delivery, only committed results reach the dashboards.
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe(topic_names)
    applied = quarantined = 0
    idle_since = time.monotonic()
    try:
        while True:
            messages = consumer.consume(batch_size, timeout=0.5)
            messages = [m for m in messages if m.error() is None]
            if not messages:
                if until_caught_up and time.monotonic() - idle_since > 2:
                    break
                continue
            idle_since = time.monotonic()
            done, poison = apply_batch(client, messages)
            # Quarantined before the commit: a crash in between re-reads, never loses, them.
            quarantine(client, poison)
            for entry in poison:
                print(f"redis_sink: quarantined in {QUARANTINE}: {entry[:300]!r}", flush=True)
            consumer.commit(asynchronous=False)
            applied += done
            quarantined += len(poison)
    finally:
        consumer.close()
    if quarantined:
        print(f"redis_sink: quarantined {quarantined} messages in {QUARANTINE}", flush=True)
    return applied


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="redis_sink", description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap-servers", default=settings.kafka_bootstrap())
    p.add_argument("--redis-url", default=settings.redis_url())
    p.add_argument("--topics", default=f"{topics.QOE_AGGREGATES},{topics.QOE_ALERTS}")
    p.add_argument("--group-id", default="qoe-redis-sink")
    p.add_argument("--until-caught-up", action="store_true", help="exit once no message comes")
    args = p.parse_args(argv)
    applied = run(
        args.bootstrap_servers,
        args.redis_url,
        args.topics.split(","),
        args.group_id,
        until_caught_up=args.until_caught_up,
    )
    print(f"redis_sink: applied {applied} records", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
