"""Exposure events: valid ones kept, the rest quarantined with the reason; first exposure wins."""

from __future__ import annotations

import datetime as dt
import json

from netflix_assets.experiments.assignment import assign
from netflix_assets.experiments.definitions import Experiment, Variant
from netflix_assets.experiments.exposures import exposure_event, first_exposures, triage

MMR = Experiment(
    "mmr_lambda",
    "mmr-lambda-2026-03",
    (Variant("lambda_0_7", 0.5), Variant("lambda_0_5", 0.5)),
    dt.date(2026, 3, 1),
    dt.date(2026, 3, 14),
    "watch_hours",
)
REGISTRY = {MMR.experiment_id: MMR}
AT = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)


def event(profile: str = "ml:1", **overrides) -> dict:
    return {**exposure_event(MMR, profile, assign(MMR, profile), AT), **overrides}


def test_valid_events_pass_and_bad_ones_are_quarantined_with_their_reason():
    good = [event(f"ml:{i}") for i in range(20)]
    other = "lambda_0_5" if assign(MMR, "ml:1") == "lambda_0_7" else "lambda_0_7"
    bad = {
        "not JSON": b"\xff\xfe",
        "unknown experiment 'ghost'": event(experiment_id="ghost"),
        "variant 'c' is not one of": event(variant="c"),
        f"is assigned {assign(MMR, 'ml:1')!r}": event(variant=other),
        "missing field(s) ['profile_id']": event(profile_id=""),
        "outside 'mmr_lambda''s dates": event(exposed_at="2026-04-01T00:00:00+00:00"),
        "has no time zone": event(exposed_at="2026-03-02T00:00:00"),
        "schema_version 2": event(schema_version=2),
        "not a JSON object": "[1]",
    }
    valid, quarantined = triage(
        [*good[:10], *bad.values(), *[json.dumps(g) for g in good[10:]]], REGISTRY
    )
    assert [e.profile_id for e in valid] == [f"ml:{i}" for i in range(20)]
    assert len(quarantined) == len(bad)
    for (expected, _), q in zip(bad.items(), quarantined, strict=True):
        assert expected in q.reason, (expected, q.reason)


def test_first_exposure_per_profile_is_kept():
    later = event(exposed_at=(AT + dt.timedelta(days=3)).isoformat())
    valid, _ = triage([later, event(), event("ml:2")], REGISTRY)
    first = first_exposures(valid)
    assert first[("mmr_lambda", "ml:1")].exposed_at == AT
    assert first[("mmr_lambda", "ml:1")].exposure_date == dt.date(2026, 3, 2)
    assert len(first) == 2
