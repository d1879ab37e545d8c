"""Experiments on the request path of the recommendation service, without Dagster.

`RunningExperiments` keeps the defined experiments (loaded from PostgreSQL by the caller's
`load`, re-read in a background thread so a new experiment starts without a restart) and gives,
for a profile and a day, the variant of each running experiment the profile is in
(`assignments`): a stable hash of the profile and the experiment's salt, so one profile always
sees one variant. `serving_params` merges what those variants change (MMR's lambda); the
definitions guarantee no two of them set the same parameter.

`ExposureLog` sends one exposure event per assignment and answered request to Kafka without the
request waiting: `produce` only appends to the idempotent producer's local queue, which
librdkafka batches and sends from its own thread; a daemon thread here serves the delivery
reports. A full queue (Kafka unreachable for minutes) or a failed delivery drops the event and
counts it, so the request is never held and the loss is visible (`lost`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import orjson

from netflix_assets.experiments.assignment import assign
from netflix_assets.experiments.definitions import Experiment, Variant
from netflix_assets.experiments.exposures import EXPOSURES_TOPIC, exposure_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assignment:
    experiment: Experiment
    variant: Variant


def assignments(
    experiments: Iterable[Experiment], profile_id: str, day: dt.date
) -> list[Assignment]:
    """The profile's variant in each experiment running on `day` whose traffic it falls in."""
    found = []
    for e in experiments:
        if not e.is_active(day):
            continue
        name = assign(e, profile_id)
        if name is not None:
            found.append(Assignment(e, next(v for v in e.variants if v.name == name)))
    return found


def serving_params(assigned: Iterable[Assignment]) -> dict[str, float]:
    """What the profile's variants change in serving (empty: the release's own pipeline)."""
    params: dict[str, float] = {}
    for a in assigned:
        params.update(a.variant.params)
    return params


class RunningExperiments:
    """The defined experiments, re-read every `refresh_seconds` by a daemon thread. A failed
    read keeps the last good set and is logged (and kept in `last_error`), so a PostgreSQL
    outage never stops serving."""

    def __init__(
        self, load: Callable[[], Mapping[str, Experiment]], refresh_seconds: float = 60.0
    ) -> None:
        self._load = load
        self._refresh_seconds = refresh_seconds
        self._experiments: tuple[Experiment, ...] = ()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> tuple[Experiment, ...]:
        return self._experiments

    def refresh(self) -> bool:
        try:
            self._experiments = tuple(self._load().values())
        except Exception as exc:  # any failure keeps the last good set
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("experiments not re-read, keeping %d: %s", len(self._experiments), exc)
            return False
        self.last_error = None
        return True

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self._refresh_seconds):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="experiments-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def assignments(self, profile_id: str, day: dt.date) -> list[Assignment]:
        return assignments(self._experiments, profile_id, day)


class ExposureLog:
    """Exposure events to Kafka from the request path, never waiting on the broker.

    `producer` is a confluent-kafka Producer made from the project's Kafka settings (idempotent,
    acks=all, batched by linger.ms); this class owns it from here on."""

    def __init__(self, producer, topic: str = EXPOSURES_TOPIC) -> None:
        self._producer = producer
        self.topic = topic
        self.queued = 0
        self.delivered = 0
        self.lost = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve_reports, name="exposures", daemon=True)
        self._thread.start()

    def log(self, assigned: Iterable[Assignment], profile_id: str, at: dt.datetime) -> None:
        timestamp_ms = int(at.timestamp() * 1000)
        for a in assigned:
            event = exposure_event(a.experiment, profile_id, a.variant.name, at)
            try:
                self._producer.produce(
                    self.topic,
                    orjson.dumps(event),
                    key=profile_id.encode(),
                    timestamp=timestamp_ms,
                    on_delivery=self._delivered,
                )
                self.queued += 1
            except BufferError:
                self.lost += 1
                log.warning("exposure dropped: the producer's queue is full (is Kafka down?)")

    def _delivered(self, error, _message) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.lost += 1
            log.warning("exposure not delivered to %s: %s", self.topic, error)

    def _serve_reports(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.2)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Waits for every queued event's report; returns how many are still undelivered."""
        return self._producer.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> int:
        self._stop.set()
        self._thread.join(timeout=1.0)
        return self.flush(timeout_s)
