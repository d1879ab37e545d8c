"""The simulator is reproducible and mixes in the bad input it promises."""

from __future__ import annotations

import json
import random

import jsonschema

from schema.events import json_schema
from streaming.simulator import MALFORMED_KINDS, SimConfig, Simulator


def test_same_seed_same_messages() -> None:
    config = SimConfig(users=50, titles=20, seed=3)
    assert list(Simulator(config).messages()) == list(Simulator(config).messages())
    assert list(Simulator(config).messages()) != list(
        Simulator(SimConfig(users=50, titles=20, seed=4)).messages()
    )


def test_valid_events_match_the_json_schema_and_bad_ones_do_not() -> None:
    config = SimConfig(users=80, titles=30, malformed_share=0.02, duplicate_share=0.01)
    validator = jsonschema.Draft202012Validator(json_schema())
    kinds = {}
    for message in Simulator(config).messages():
        kinds[message.kind] = kinds.get(message.kind, 0) + 1
        try:
            event = json.loads(message.value)
        except json.JSONDecodeError:
            assert message.kind == "bad_json"
            continue
        errors = list(validator.iter_errors(event))
        if message.kind in ("valid", "duplicate"):
            assert not errors, (event, errors[0].message)
        elif message.kind != "far_future":  # a far-future date is well-formed JSON Schema-wise
            assert errors, message.kind
    assert set(MALFORMED_KINDS) <= set(kinds)
    assert kinds["duplicate"] > 0


def test_degraded_cdn_stalls_more() -> None:
    def stalls_per_heartbeat(cdn: str | None) -> dict[str, float]:
        counts: dict[str, list[int]] = {}
        for event in Simulator(SimConfig(users=300, titles=30, degrade_cdn=cdn)).events():
            pair = counts.setdefault(event["cdn"], [0, 0])
            pair[0] += event["event_type"] == "stall_end"
            pair[1] += event["event_type"] == "heartbeat"
        return {c: s / max(h, 1) for c, (s, h) in counts.items()}

    normal, degraded = stalls_per_heartbeat(None), stalls_per_heartbeat("akamai")
    assert degraded["akamai"] > 4 * normal["akamai"]


def test_event_times_are_iso_utc_milliseconds() -> None:
    """The simulator formats times by integer arithmetic; datetime must agree to the ms."""
    from datetime import UTC, datetime

    from streaming.simulator import _ts

    rng = random.Random(1)
    samples = [0, 999, 86_399_999, 86_400_000] + [
        rng.randrange(4_102_444_800_000) for _ in range(2000)
    ]
    for ms in samples:
        expected = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert _ts(ms) == f"{expected}.{ms % 1000:03d}Z"


def test_bucketed_order_equals_sorting_the_whole_day() -> None:
    """Events leave in 5-minute buckets; the result must be exactly the stable sort of every
    session of the day by event time (sessions here run long, across many buckets)."""
    from operator import itemgetter

    class WholeDay(Simulator):
        def _merged(self, starts):
            sessions = [sorted(self.session(u, at), key=itemgetter("_ms")) for at, u in starts]
            return iter(sorted((e for s in sessions for e in s), key=itemgetter("_ms")))

    config = SimConfig(users=400, titles=30, days=2, seed=12, max_watch_minutes=180)
    bucketed = [(e["_ms"], e["event_id"]) for e in Simulator(config).events()]
    assert len(bucketed) > 10_000
    assert bucketed == [(e["_ms"], e["event_id"]) for e in WholeDay(config).events()]
