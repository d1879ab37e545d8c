"""Experiments in PostgreSQL: defined once, read back equal, and refused (by the core and by the
database's own constraints) when allocation overlaps or shares do not sum to 1."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest

from netflix_assets.experiments import registry
from netflix_assets.experiments.definitions import (
    Experiment,
    ExperimentDefinitionError,
    Variant,
)

pytestmark = pytest.mark.stack
D0, D1 = dt.date(2026, 12, 1), dt.date(2026, 12, 28)


LAMBDA = (Variant("control", 0.5), Variant("treatment", 0.5, {"mmr_lambda": 0.5}))
"""Variants that set a serving parameter: the test database is shared by the session's tests,
so the experiments that use them run in years of their own (no two may hold one profile)."""


def make(layer: str, exp_id: str | None = None, **kw) -> Experiment:
    exp_id = exp_id or f"e_{uuid.uuid4().hex[:8]}"
    variants = kw.pop("variants", (Variant("control", 0.5), Variant("treatment", 0.5)))
    return Experiment(
        exp_id,
        kw.pop("salt", exp_id + "-salt"),
        variants,
        kw.pop("start", D0),
        kw.pop("end", D1),
        "watch_hours",
        kw.pop("guardrails", ("stalls",)),
        layer=layer,
        **kw,
    )


def test_define_load_round_trip_and_only_end_and_description_change(experiments_db):
    layer = f"l{uuid.uuid4().hex[:6]}"
    start, end = dt.date(2031, 1, 1), dt.date(2031, 1, 28)
    e = make(layer, description="first", variants=LAMBDA, start=start, end=end)
    with experiments_db.connect() as conn:
        assert registry.define(conn, [e]).created == [e.experiment_id]
    with experiments_db.connect() as conn:
        loaded = registry.load(conn)[e.experiment_id]
        assert loaded == e and loaded.description == "first"
        assert loaded.variants[1].params == {"mmr_lambda": 0.5}
        assert registry.define(conn, [e]).unchanged == [e.experiment_id]
        shorter = Experiment.from_dict({**e.to_dict(), "end": "2031-01-20"})
        assert registry.define(conn, [shorter]).updated == [e.experiment_id]
        assert registry.load(conn)[e.experiment_id].end == dt.date(2031, 1, 20)
        resalted = Experiment.from_dict({**e.to_dict(), "salt": "other-salt"})
        with pytest.raises(ExperimentDefinitionError, match="other salt; only its end date"):
            registry.define(conn, [resalted])


def test_overlapping_allocation_is_refused_by_the_core_and_by_the_database(experiments_db):
    layer = f"l{uuid.uuid4().hex[:6]}"
    first = make(layer, traffic_end=0.5)
    second = make(layer, traffic_start=0.4, start=dt.date(2026, 12, 20), end=dt.date(2027, 1, 5))
    with experiments_db.connect() as conn:
        registry.define(conn, [first])
        with pytest.raises(ExperimentDefinitionError, match=f"overlap in layer '{layer}'"):
            registry.define(conn, [second])
    # A writer that skips the core (psql, another service) meets the exclusion constraint.
    refused = pytest.raises(psycopg.errors.ExclusionViolation, match="no_overlapping_allocation")
    with refused, experiments_db.connect() as conn:
        registry._insert(conn, second)
    disjoint = make(layer, traffic_start=0.5)
    with experiments_db.connect() as conn:
        assert registry.define(conn, [disjoint]).created == [disjoint.experiment_id]


@pytest.mark.parametrize(
    ("shares", "constraint"),
    [
        ((0.5, 0.4), "experiments_shares_sum_to_one"),
        ((1.0,), "experiments_at_least_two_variants"),
    ],
)
def test_the_database_refuses_shares_that_do_not_sum_to_one(experiments_db, shares, constraint):
    e = make(f"l{uuid.uuid4().hex[:6]}")
    refused = pytest.raises(psycopg.errors.CheckViolation, match="variant")
    with refused as caught, experiments_db.connect() as conn:
        registry._insert(conn, e)
        conn.execute(
            "DELETE FROM experiments.variants WHERE experiment_id = %s", (e.experiment_id,)
        )
        for i, share in enumerate(shares):
            conn.execute(registry.INSERT_VARIANT, (e.experiment_id, i, f"v{i}", share, "{}"))
    assert caught.value.diag.constraint_name == constraint
    with experiments_db.connect() as conn:
        assert e.experiment_id not in registry.load(conn)


def test_conflicting_serving_parameters_and_unknown_metrics_are_refused(experiments_db):
    start, end = dt.date(2032, 1, 1), dt.date(2032, 1, 28)
    a = make(f"l{uuid.uuid4().hex[:6]}", variants=LAMBDA, start=start, end=end)
    # Another layer: a profile can be in both.
    b = make(f"l{uuid.uuid4().hex[:6]}", variants=LAMBDA, start=end, end=end)
    with experiments_db.connect() as conn:
        registry.define(conn, [a])
        with pytest.raises(ExperimentDefinitionError, match=r"both set \['mmr_lambda'\]"):
            registry.define(conn, [b])
        c = make(f"l{uuid.uuid4().hex[:6]}")
        with pytest.raises(ExperimentDefinitionError, match="metrics \\['stalls'\\] that the"):
            registry.define(conn, [c], known_metrics=["watch_hours"])
        with pytest.raises(ExperimentDefinitionError, match="defined twice"):
            registry.define(conn, [c, c])
        assert c.experiment_id not in registry.load(conn)


def test_cli_defines_the_deploy_file_then_lists_it_and_refuses_a_bad_file(
    experiments_db, monkeypatch, tmp_path
):
    from click.testing import CliRunner

    from netflix_assets.cli import main
    from netflix_assets.settings import REPO_ROOT

    monkeypatch.setenv("NETFLIX_ASSETS_POSTGRES_DSN", experiments_db.conninfo())
    deploy = str(REPO_ROOT / "deploy" / "experiments.yml")
    runner = CliRunner()
    first = runner.invoke(main, ["experiments", "define", deploy])
    assert first.exit_code == 0, first.output
    assert "created mmr_lambda" in first.output
    again = runner.invoke(main, ["experiments", "define", deploy])
    assert again.exit_code == 0 and "created" not in again.output
    listed = runner.invoke(main, ["experiments", "list"])
    assert "mmr_lambda  layer ranking" in listed.output and "mmr_lambda=0.5" in listed.output
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "experiments:\n  - {experiment_id: half, salt: s, start: 2033-01-01, end: 2033-01-02,\n"
        "     primary_metric: watch_hours,\n"
        "     variants: [{name: a, share: 0.5}, {name: b, share: 0.4}]}\n"
    )
    refused = runner.invoke(main, ["experiments", "define", str(bad)])
    assert refused.exit_code == 2
    assert "variant shares sum to 0.9, not 1" in refused.output
