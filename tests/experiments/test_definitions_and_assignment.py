"""Experiment definitions refuse what cannot run; assignment is deterministic and follows shares."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from netflix_assets.experiments.assignment import assign, assign_many, unit_hash
from netflix_assets.experiments.definitions import (
    Experiment,
    ExperimentDefinitionError,
    Variant,
    validate_registry,
)
from netflix_assets.experiments.stats import sample_ratio_mismatch

D0, D1 = dt.date(2026, 3, 1), dt.date(2026, 3, 14)


def make(exp_id="mmr_lambda", salt="mmr-2026-03", shares=(0.5, 0.5), **kw) -> Experiment:
    variants = tuple(Variant(f"v{i}", s) for i, s in enumerate(shares))
    return Experiment(
        exp_id, salt, variants, kw.pop("start", D0), kw.pop("end", D1), "watch_seconds", **kw
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shares": (0.5, 0.4)}, "sum to 0.9, not 1"),
        ({"shares": (0.7, 0.7, -0.4)}, "each share must be in (0, 1]"),
        ({"shares": (1.0,)}, "at least two variants"),
        ({"salt": "  "}, "empty salt"),
        ({"start": D1, "end": D0}, "before it starts"),
        ({"exp_id": "Bad Id!"}, "lower-case"),
        ({"traffic_start": 0.6, "traffic_end": 0.4}, "traffic slice"),
        ({"guardrail_metrics": ("watch_seconds",)}, "both the primary and a guardrail"),
    ],
)
def test_bad_definitions_are_refused_with_the_cause(kwargs, message):
    with pytest.raises(
        ExperimentDefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        make(**kwargs)


def test_from_dict_names_a_missing_field_and_parses_dates():
    raw = {
        "experiment_id": "ranker_vs_als",
        "salt": "r-vs-a",
        "variants": [{"name": "als_only", "share": 0.5}, {"name": "ranker", "share": 0.5}],
        "start": "2026-03-01",
        "end": "2026-03-14",
        "primary_metric": "watch_seconds",
        "guardrail_metrics": ["rebuffer_ratio"],
    }
    e = Experiment.from_dict(raw)
    assert (
        e.start == D0
        and e.control == "als_only"
        and e.metrics == ("watch_seconds", "rebuffer_ratio")
    )
    with pytest.raises(ExperimentDefinitionError, match="lacks the field 'salt'"):
        Experiment.from_dict({k: v for k, v in raw.items() if k != "salt"})
    with pytest.raises(ExperimentDefinitionError, match="bad value"):
        Experiment.from_dict({**raw, "start": "March"})


def test_registry_refuses_overlapping_allocation_and_shared_salts():
    a = make("a", "salt-a", traffic_start=0.0, traffic_end=0.5)
    b = make("b", "salt-b", traffic_start=0.5, traffic_end=1.0)
    c = make("c", "salt-c", traffic_start=0.4, traffic_end=0.6)
    assert set(validate_registry([a, b])) == {"a", "b"}
    with pytest.raises(ExperimentDefinitionError, match="overlap in layer 'default'"):
        validate_registry([a, b, c])
    # the same slice in another layer, or on other dates, does not overlap
    validate_registry([a, b, make("c", "salt-c", layer="ui")])
    validate_registry(
        [a, b, make("c", "salt-c", start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 9))]
    )
    with pytest.raises(ExperimentDefinitionError, match="share the salt"):
        validate_registry([a, make("d", "salt-a", layer="ui")])
    with pytest.raises(ExperimentDefinitionError, match="defined twice"):
        validate_registry([a, make("a", "salt-z", layer="ui")])


def test_assignment_is_deterministic_and_pinned():
    e = make()
    first = [assign(e, f"p{i}") for i in range(1000)]
    assert first == [assign(e, f"p{i}") for i in range(1000)]
    # pinned: a change of hash or key layout would reshuffle every running experiment
    assert unit_hash("salt:mmr-2026-03", "p1") == pytest.approx(0.94800842, abs=1e-8)


def test_assignment_follows_shares_and_is_independent_across_salts():
    profiles = [f"profile-{i}" for i in range(60_000)]
    e = make(shares=(0.5, 0.3, 0.2))
    got = assign_many(e, profiles)
    counts = {name: int((got == name).sum()) for name in e.variant_names}
    assert sample_ratio_mismatch(counts, e.shares).passed, counts
    other = assign_many(make("other", "another-salt", layer="ui"), profiles)
    table = np.array(
        [[np.sum((got == a) & (other == b)) for b in ("v0", "v1")] for a in e.variant_names]
    )
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    assert np.abs(table / expected - 1).max() < 0.05  # independent: cells ≈ product of margins


def test_disjoint_slices_never_share_a_profile_and_take_their_width():
    a = make("a", "salt-a", traffic_start=0.0, traffic_end=0.3)
    b = make("b", "salt-b", traffic_start=0.3, traffic_end=1.0)
    profiles = [f"u{i}" for i in range(20_000)]
    in_a = assign_many(a, profiles) != None  # noqa: E711 (elementwise on an object array)
    in_b = assign_many(b, profiles) != None  # noqa: E711
    assert not (in_a & in_b).any()
    assert (in_a | in_b).all()
    assert abs(in_a.mean() - 0.3) < 0.015


def test_the_shipped_experiments_file_loads_and_bad_files_are_refused():
    from netflix_assets.experiments.definitions import load_registry
    from netflix_assets.settings import REPO_ROOT
    from spark_jobs.experiments import METRICS

    shipped = load_registry((REPO_ROOT / "deploy" / "experiments.yml").read_text(), METRICS)
    assert {"mmr_lambda", "aa_ranking"} <= set(shipped)
    good = make().to_dict()
    assert load_registry(json.dumps({"experiments": [good]}))["mmr_lambda"] == make()
    with pytest.raises(ExperimentDefinitionError, match="does not compute"):
        load_registry(json.dumps({"experiments": [{**good, "primary_metric": "revenue"}]}), METRICS)
    with pytest.raises(ExperimentDefinitionError, match="holds `experiments:`"):
        load_registry("- just a list")
    with pytest.raises(ExperimentDefinitionError, match="not valid YAML"):
        load_registry("experiments: [unclosed")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"temperature": 0.5}, r"does not apply; choose from \['mmr_lambda'\]"),
        ({"mmr_lambda": 1.5}, r"mmr_lambda = 1.5; it must be in \[0.0, 1.0\]"),
        ({"mmr_lambda": float("nan")}, "mmr_lambda = nan"),
    ],
)
def test_bad_serving_params_are_refused(params, message):
    with pytest.raises(ExperimentDefinitionError, match=message):
        Experiment(
            "lam", "s", (Variant("a", 0.5), Variant("b", 0.5, params)), D0, D1, "watch_hours"
        )


def test_a_profile_gets_one_variant_per_running_experiment_and_its_params():
    from netflix_assets.experiments.serving import assignments, serving_params

    lam = Experiment(
        "lam",
        "lam-salt",
        (Variant("a", 0.5, {"mmr_lambda": 0.9}), Variant("b", 0.5, {"mmr_lambda": 0.4})),
        D0,
        D1,
        "watch_hours",
        layer="ranking",
    )
    aa = make("aa", "aa-salt", layer="aa", traffic_end=0.5)
    later = make("later", "later-salt", start=D1, end=D1 + dt.timedelta(days=3))
    for p in (f"u{i}" for i in range(300)):
        got = assignments([lam, aa, later], p, D0)
        assert [a.experiment.experiment_id for a in got][:1] == ["lam"]
        assert {a.experiment.experiment_id for a in got} <= {"lam", "aa"}
        assert all(a.variant.name == assign(a.experiment, p) for a in got)
        assert serving_params(got) == {"mmr_lambda": 0.9 if assign(lam, p) == "a" else 0.4}
        assert [
            a.experiment.experiment_id
            for a in assignments([lam, later], p, D1 + dt.timedelta(days=1))
        ] == ["later"]
