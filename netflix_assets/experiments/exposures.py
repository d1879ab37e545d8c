"""Exposure events: the record that a profile was served a variant, and their triage.

The serving layer emits one event per experiment each time it answers with an experiment's
variant (`exposure_event`); the lake keeps the first exposure per (experiment, profile). Before
that, `triage` splits what arrived into valid exposures and quarantined records, each with its
reason: not JSON, a missing field, an unknown experiment, a variant the experiment does not
define, a variant that is not the profile's deterministic assignment (a client that forged or
cached one), or a time outside the experiment's dates. Nothing valid is dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netflix_assets.experiments.assignment import assign
from netflix_assets.experiments.definitions import Experiment
from schema import topics

EXPOSURES_TOPIC = topics.EXPERIMENT_EXPOSURES
SCHEMA_VERSION = 1
REQUIRED = ("schema_version", "event_id", "experiment_id", "profile_id", "variant", "exposed_at")


@dataclass(frozen=True)
class Exposure:
    event_id: str
    experiment_id: str
    profile_id: str
    variant: str
    exposed_at: dt.datetime

    @property
    def exposure_date(self) -> dt.date:
        return self.exposed_at.astimezone(dt.UTC).date()


@dataclass(frozen=True)
class Quarantined:
    raw: str
    reason: str


def exposure_event(
    experiment: Experiment, profile_id: str, variant: str, at: dt.datetime
) -> dict[str, object]:
    """The JSON-ready exposure event the serving layer sends to `EXPOSURES_TOPIC`."""
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": str(uuid.uuid4()),
        "experiment_id": experiment.experiment_id,
        "profile_id": profile_id,
        "variant": variant,
        "exposed_at": at.astimezone(dt.UTC).isoformat(),
    }


def triage(
    raw_events: Iterable[bytes | str | Mapping], experiments: Mapping[str, Experiment]
) -> tuple[list[Exposure], list[Quarantined]]:
    """Valid exposures and quarantined records (with their reason), in arrival order."""
    valid: list[Exposure] = []
    quarantined: list[Quarantined] = []
    for raw in raw_events:
        try:
            event, text = _decode(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            quarantined.append(Quarantined(repr(raw)[:2000], f"not JSON: {exc}"))
            continue
        try:
            valid.append(_exposure(event, experiments))
        except _Rejected as exc:
            quarantined.append(Quarantined(text, str(exc)))
    return valid, quarantined


class _Rejected(ValueError):
    pass


def _decode(raw: bytes | str | Mapping) -> tuple[object, str]:
    if isinstance(raw, Mapping):
        return dict(raw), json.dumps(dict(raw), default=str)
    text = raw.decode() if isinstance(raw, bytes) else raw
    return json.loads(text), text


def _exposure(event: object, experiments: Mapping[str, Experiment]) -> Exposure:
    if not isinstance(event, dict):
        raise _Rejected("not a JSON object")
    missing = [f for f in REQUIRED if event.get(f) in (None, "")]
    if missing:
        raise _Rejected(f"missing field(s) {missing}")
    if event["schema_version"] != SCHEMA_VERSION:
        raise _Rejected(f"schema_version {event['schema_version']!r}, expected {SCHEMA_VERSION}")
    experiment = experiments.get(str(event["experiment_id"]))
    if experiment is None:
        raise _Rejected(f"unknown experiment {event['experiment_id']!r}")
    profile, variant = str(event["profile_id"]), str(event["variant"])
    if variant not in experiment.variant_names:
        raise _Rejected(
            f"variant {variant!r} is not one of {list(experiment.variant_names)} of "
            f"{experiment.experiment_id!r}"
        )
    assigned = assign(experiment, profile)
    if assigned != variant:
        raise _Rejected(
            f"profile {profile!r} is assigned {assigned!r} in {experiment.experiment_id!r}, "
            f"not {variant!r}"
        )
    try:
        at = dt.datetime.fromisoformat(str(event["exposed_at"]))
    except ValueError:
        raise _Rejected(f"exposed_at {event['exposed_at']!r} is not an ISO-8601 time") from None
    if at.tzinfo is None:
        raise _Rejected(f"exposed_at {event['exposed_at']!r} has no time zone")
    exposure = Exposure(str(event["event_id"]), experiment.experiment_id, profile, variant, at)
    if not experiment.is_active(exposure.exposure_date):
        raise _Rejected(
            f"exposed on {exposure.exposure_date}, outside {experiment.experiment_id!r}'s dates "
            f"{experiment.start}..{experiment.end}"
        )
    return exposure


def first_exposures(exposures: Iterable[Exposure]) -> dict[tuple[str, str], Exposure]:
    """The earliest exposure per (experiment, profile): when the profile entered the experiment."""
    first: dict[tuple[str, str], Exposure] = {}
    for e in exposures:
        key = (e.experiment_id, e.profile_id)
        if key not in first or e.exposed_at < first[key].exposed_at:
            first[key] = e
    return first
