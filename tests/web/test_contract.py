"""The fast contract check against the compiled schema on hostile inputs (no services).

`check_event` must answer exactly what schema/viewing_event.v1.schema.json answers, and its fast
test `is_plainly_valid` must never accept an event the schema refuses.
"""

from __future__ import annotations

import random

import fastjsonschema
import orjson
import pytest
from conftest import viewing_event

from netflix_assets.web.contract import Violation, check_event, is_plainly_valid
from schema.events import EVENT_TYPES, OPTIONAL_FIELDS, REQUIRED_FIELDS, json_schema

SCHEMA = fastjsonschema.compile(json_schema())

HOSTILE_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    0.5,
    -0.0,
    2**63,
    2**64 - 1,
    "",
    " ",
    "x",
    "US",
    "us",
    "USA",
    "U",
    "US\n",
    "\nUS",
    "ÀÉ",
    "\uff35\uff33",  # fullwidth U S
    "web",
    "Web",
    "heartbeat",
    "heartbeat\n",
    "2026-12-03T10:00:00.123Z",
    "2026-12-03T10:00:00Z",
    "2026-12-03t10:00:00+01:00",
    "2026-12-03T10:00:00.123Z\n",
    "2026-02-30T10:00:00Z",
    "2024-02-29T23:59:60Z",
    "2026-12-03 10:00:00Z",
    "2026-12-03T24:00:00Z",
    "yesterday",
    [],
    ["US"],
    {},
    {"a": 1},
]


def schema_verdict(event: object) -> Violation | None:
    try:
        SCHEMA(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        return Violation(exc.rule, exc.message.replace("data", "event", 1))
    return None


def full_event(**changes) -> dict:
    optional = {
        "rendition": "720p",
        "bitrate_kbps": 3000,
        "buffer_ms": 12000,
        "startup_ms": None,
        "stall_ms": 0,
        "error_code": None,
    }
    return viewing_event("a1", "p1", **{**optional, **changes})


def hostile_events(seed: int = 16, mutants: int = 20_000) -> list[object]:
    """Each field set to each hostile value, each field removed, extra fields, and random
    combinations of those changes on full and minimal events."""
    fields = REQUIRED_FIELDS + OPTIONAL_FIELDS
    events: list[object] = [*HOSTILE_VALUES, viewing_event("a1", "p1"), full_event()]
    for name in fields:
        for value in HOSTILE_VALUES:
            events.append(full_event(**{name: value}))
            events.append(viewing_event("a1", "p1", **{name: value}))
        without = full_event()
        del without[name]
        events.append(without)
    events += [full_event(extra=1), full_event(**{"": 1}), full_event(Country="US")]
    events += [full_event(event_type=t) for t in EVENT_TYPES]
    rng = random.Random(seed)
    for _ in range(mutants):
        event = full_event() if rng.random() < 0.5 else viewing_event("a1", "p1")
        for _ in range(rng.randint(1, 3)):
            name = rng.choice([*fields, "extra"])
            if rng.random() < 0.15:
                event.pop(name, None)
            else:
                event[name] = rng.choice(HOSTILE_VALUES)
        events.append(event)
    return events


def test_the_fast_test_never_accepts_what_the_schema_refuses():
    events = hostile_events()
    accepted_fast = 0
    for event in events:
        if is_plainly_valid(event):
            accepted_fast += 1
            assert schema_verdict(event) is None, event
    # Not vacuous: the hostile set holds valid events, and the fast test takes plain ones.
    assert accepted_fast > 100


def test_check_event_answers_what_the_schema_answers():
    for event in hostile_events(seed=18):
        assert check_event(event) == schema_verdict(event), event


def test_events_as_parsed_from_the_wire_agree_too():
    # orjson's own types: big integers, floats that are whole numbers, nested values.
    for event in hostile_events(seed=20, mutants=5_000):
        try:
            wired = orjson.loads(orjson.dumps(event))
        except orjson.JSONEncodeError:
            continue
        assert check_event(wired) == schema_verdict(wired), wired


@pytest.mark.parametrize(
    "event",
    [
        viewing_event("a1", "p1"),
        full_event(),
        viewing_event("a1", "p1", event_type="start", startup_ms=850, rendition="1080p"),
        viewing_event("a1", "p1", event_type="stall_end", stall_ms=1200, buffer_ms=0),
        viewing_event("a1", "p1", event_type="error", error_code="networkError"),
        viewing_event("a1", "p1", event_ts="2026-12-03T10:00:00+01:00"),
    ],
)
def test_what_players_send_takes_the_fast_path(event):
    assert is_plainly_valid(event)


@pytest.mark.parametrize(
    ("change", "rule", "reason"),
    [
        ({"country": "usa"}, "pattern", "event.country must match pattern"),
        ({"event_ts": "yesterday"}, "format", "event.event_ts must be date-time"),
        ({"schema_version": True}, "const", "event.schema_version must be same as const"),
        ({"position_ms": -1}, "minimum", "event.position_ms must be bigger than or equal to 0"),
        ({"event_id": ""}, "minLength", "event.event_id must be longer than or equal to 1"),
        ({"extra": 1}, "additionalProperties", "must not contain {'extra'} properties"),
    ],
)
def test_refusals_keep_the_schemas_rule_and_reason(change, rule, reason):
    violation = check_event(viewing_event("a1", "p1", **change))
    assert violation.rule == rule and reason in violation.reason


def test_whole_number_floats_are_left_to_the_schema_which_accepts_them():
    event = viewing_event("a1", "p1", position_ms=1000.0, schema_version=1.0)
    assert not is_plainly_valid(event)
    assert check_event(event) is None
