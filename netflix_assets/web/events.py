"""POST /v1/events: a player's batch of viewing events, checked and produced to Kafka.

Each event is validated against the contract (schema/viewing_event.v1.schema.json: contract.py,
a fast test of the plain form backed by the compiled schema, about 2.5 us an event) and must
belong to the signed-in profile; the valid ones are produced, keyed by session_id, with the
idempotent producer, and the request answers only when Kafka has acknowledged every one of them
(acks=all), so "accepted" means durable. Duplicates from a replayed batch keep their event_id and
are dropped downstream.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import KafkaError, Producer

from netflix_assets.web.contract import check_event
from netflix_assets.web.viewers import Profile


class BatchRefused(Exception):
    """The whole batch is unusable (not JSON, not a list, too big); status, reason and its
    kind (`not_json`, `not_a_batch`, `empty`, `too_many_events`, `too_large`)."""

    def __init__(self, status: int, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Rejection:
    index: int
    event_id: str | None
    reason: str
    rule: str
    """The contract rule broken (type, pattern, ...) or other_profile / other_account."""

    def answer(self) -> dict[str, Any]:
        return {"index": self.index, "event_id": self.event_id, "reason": self.reason}


def parse_batch(body: bytes, max_events: int) -> list[Any]:
    """The events of a body `{"events": [...]}` or `[...]`, else BatchRefused."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchRefused(400, f"the body is not JSON: {exc}", "not_json") from None
    events = data.get("events") if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise BatchRefused(
            400, 'the body must be {"events": [...]} or a JSON list of events', "not_a_batch"
        )
    if not events:
        raise BatchRefused(400, "the batch holds no events", "empty")
    if len(events) > max_events:
        raise BatchRefused(
            413, f"{len(events)} events in one batch; at most {max_events}", "too_many_events"
        )
    return events


def check_events(events: list[Any], viewer: Profile) -> tuple[list[dict], list[Rejection]]:
    """Split a batch into the events to produce and the rejected ones with their reasons."""
    valid: list[dict] = []
    rejected: list[Rejection] = []
    for index, event in enumerate(events):
        violation = check_event(event)
        if violation is not None:
            rule, reason = violation.rule, violation.reason
        elif event["profile_id"] != viewer.profile_id:
            rule, reason = "other_profile", "profile_id is not the signed-in profile's"
        elif event["user_id"] != viewer.account_id:
            rule, reason = "other_account", "user_id is not the signed-in account's"
        else:
            valid.append(event)
            continue
        event_id = event.get("event_id") if isinstance(event, dict) else None
        event_id = event_id if isinstance(event_id, str) else None
        rejected.append(Rejection(index, event_id, reason, rule))
    return valid, rejected


class _BatchAck:
    """The delivery reports of one batch: counts them down and settles the request's future
    on the last. Reports are served by one thread at a time (the poller, then close's flush),
    so the count needs no lock."""

    __slots__ = ("error", "future", "left", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future, left: int):
        self.loop = loop
        self.future = future
        self.left = left
        self.error: KafkaError | None = None

    def __call__(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None and self.error is None:
            self.error = err
        self.left -= 1
        if self.left == 0:
            self.loop.call_soon_threadsafe(_settle, self.future, self.error)


class EventSink:
    """One idempotent producer per app; a thread serves its delivery reports, and each batch
    awaits the acknowledgement of all its events."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="event-sink", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def produce(self, events: list[dict]) -> None:
        """Returns when Kafka acknowledged every event; raises KafkaDeliveryFailed otherwise."""
        if not events:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        ack = _BatchAck(loop, done, len(events))
        produce, topic = self.producer.produce, self.topic
        for event in events:
            value = orjson.dumps(event)
            while True:
                try:
                    produce(topic, value=value, key=event["session_id"], on_delivery=ack)
                    break
                except BufferError:
                    await asyncio.sleep(0.005)  # the local queue is full: let deliveries drain
        await done

    def close(self, timeout_s: float = 10.0) -> int:
        """Stop the poller, deliver what is queued; returns the messages left undelivered."""
        self._stop.set()
        self._thread.join(timeout_s)
        return self.producer.flush(timeout_s)


class KafkaDeliveryFailed(Exception):
    """Kafka did not acknowledge an event of the batch; the client should retry it whole."""


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaDeliveryFailed(f"Kafka refused an event: {error.str()}"))
