"""POST /v1/events: a player's batch of viewing events, checked and produced to Kafka.

Each event is validated against the contract (schema/viewing_event.v1.schema.json, compiled by
fastjsonschema: about 5 us an event where jsonschema takes 400) and must belong to the signed-in
profile; the valid ones are produced, keyed by session_id, with the idempotent producer, and the
request answers only when Kafka has acknowledged every one of them (acks=all), so "accepted"
means durable. Duplicates from a replayed batch keep their event_id and are dropped downstream.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import fastjsonschema
import orjson
from confluent_kafka import KafkaError, Producer

from netflix_assets.web.viewers import Profile
from schema.events import json_schema


class BatchRefused(Exception):
    """The whole batch is unusable (not JSON, not a list, too big); status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Rejection:
    index: int
    event_id: str | None
    reason: str


@cache
def _validator() -> Callable[[Any], Any]:
    return fastjsonschema.compile(json_schema())


def parse_batch(body: bytes, max_events: int) -> list[Any]:
    """The events of a body `{"events": [...]}` or `[...]`, else BatchRefused."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchRefused(400, f"the body is not JSON: {exc}") from None
    events = data.get("events") if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise BatchRefused(400, 'the body must be {"events": [...]} or a JSON list of events')
    if not events:
        raise BatchRefused(400, "the batch holds no events")
    if len(events) > max_events:
        raise BatchRefused(413, f"{len(events)} events in one batch; at most {max_events}")
    return events


def check_events(events: list[Any], viewer: Profile) -> tuple[list[dict], list[Rejection]]:
    """Split a batch into the events to produce and the rejected ones with their reasons."""
    validate = _validator()
    valid: list[dict] = []
    rejected: list[Rejection] = []
    for index, event in enumerate(events):
        event_id = event.get("event_id") if isinstance(event, dict) else None
        event_id = event_id if isinstance(event_id, str) else None
        try:
            validate(event)
        except fastjsonschema.JsonSchemaValueException as exc:
            rejected.append(Rejection(index, event_id, exc.message.replace("data", "event", 1)))
            continue
        if event["profile_id"] != viewer.profile_id:
            rejected.append(Rejection(index, event_id, "profile_id is not the signed-in profile's"))
        elif event["user_id"] != viewer.account_id:
            rejected.append(Rejection(index, event_id, "user_id is not the signed-in account's"))
        else:
            valid.append(event)
    return valid, rejected


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
        state = {"left": len(events), "error": None}
        lock = threading.Lock()

        def report(err: KafkaError | None, _msg: Any) -> None:
            with lock:
                state["left"] -= 1
                if err is not None and state["error"] is None:
                    state["error"] = err
                finished = state["left"] == 0
            if finished:
                loop.call_soon_threadsafe(_settle, done, state["error"])

        for event in events:
            value = orjson.dumps(event)
            while True:
                try:
                    self.producer.produce(
                        self.topic, value=value, key=event["session_id"], on_delivery=report
                    )
                    break
                except BufferError:
                    await asyncio.sleep(0.005)  # the local queue is full: let deliveries drain
        await done

    def close(self, timeout_s: float = 10.0) -> int:
        """Deliver what is queued, stop the poller; returns the messages left undelivered."""
        left = self.producer.flush(timeout_s)
        self._stop.set()
        self._thread.join(timeout_s)
        return left


class KafkaDeliveryFailed(Exception):
    """Kafka did not acknowledge an event of the batch; the client should retry it whole."""


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaDeliveryFailed(f"Kafka refused an event: {error.str()}"))
