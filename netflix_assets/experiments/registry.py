"""Experiments in PostgreSQL (schema `experiments`, migration 0007): define them and load them.

`define` writes experiments in one transaction after the core has checked them against every
experiment already defined (overlapping allocation, shared salts, serving parameters, metrics),
so the refusal names the cause. The database's constraints refuse the same things again for
writers that bypass this module and for two definers racing; their errors are translated here.
An experiment is fixed once defined except for its end date and description: a new salt, layer,
slice, variant, share or parameter would move profiles between variants mid-experiment, so such
a change is refused with the fields named (define a new experiment instead). The functions take
a psycopg connection (PostgresResource.connect or a plain one); no Dagster here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import errors

from netflix_assets.experiments.definitions import (
    Experiment,
    ExperimentDefinitionError,
    Variant,
    check_metrics,
    validate_registry,
)

EXPERIMENTS_SQL = """
SELECT experiment_id, salt, layer, traffic_start, traffic_end, start_date, end_date,
       primary_metric, guardrail_metrics, description
FROM experiments.experiments ORDER BY experiment_id
"""
VARIANTS_SQL = """
SELECT experiment_id, name, share, params FROM experiments.variants
ORDER BY experiment_id, position
"""
INSERT_EXPERIMENT = """
INSERT INTO experiments.experiments (experiment_id, salt, layer, traffic_start, traffic_end,
    start_date, end_date, primary_metric, guardrail_metrics, description)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
INSERT_VARIANT = """
INSERT INTO experiments.variants (experiment_id, position, name, share, params)
VALUES (%s, %s, %s, %s, %s)
"""
UPDATE_EXPERIMENT = """
UPDATE experiments.experiments SET end_date = %s, description = %s WHERE experiment_id = %s
"""


FIXED = (
    "salt",
    "layer",
    "traffic_start",
    "traffic_end",
    "start",
    "variants",
    "primary_metric",
    "guardrail_metrics",
)
"""What may not change once an experiment is defined (only `end` and `description` may)."""


class ExperimentsNotMigrated(ExperimentDefinitionError):
    """The database has no experiments schema yet."""


@dataclass(frozen=True)
class DefineResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def load(conn: psycopg.Connection) -> dict[str, Experiment]:
    """Every defined experiment by id, each validated as it is built."""
    try:
        rows = conn.execute(EXPERIMENTS_SQL).fetchall()
        variant_rows = conn.execute(VARIANTS_SQL).fetchall()
    except errors.UndefinedTable:
        raise ExperimentsNotMigrated(
            "the database has no experiments tables; run `netflix-assets db migrate` "
            "(migration 0007_experiments.sql)"
        ) from None
    variants: dict[str, list[Variant]] = {}
    for experiment_id, name, share, params in variant_rows:
        variants.setdefault(experiment_id, []).append(
            Variant(name, float(share), {k: float(v) for k, v in params.items()})
        )
    registry = {}
    for r in rows:
        registry[r[0]] = Experiment(
            experiment_id=r[0],
            salt=r[1],
            layer=r[2],
            traffic_start=float(r[3]),
            traffic_end=float(r[4]),
            start=r[5],
            end=r[6],
            primary_metric=r[7],
            guardrail_metrics=tuple(r[8]),
            description=r[9],
            variants=tuple(variants.get(r[0], ())),
        )
    return registry


def define(
    conn: psycopg.Connection,
    experiments: Iterable[Experiment],
    known_metrics: Iterable[str] | None = None,
) -> DefineResult:
    """Writes new experiments and end-date/description changes of existing ones, all or nothing."""
    wanted = list(validate_registry(experiments).values())  # also refuses an id given twice
    if known_metrics is not None:
        check_metrics(wanted, known_metrics)
    result = DefineResult()
    try:
        with conn.transaction():
            # One definer at a time: the overlap check reads what is defined, then writes.
            conn.execute("LOCK TABLE experiments.experiments IN SHARE ROW EXCLUSIVE MODE")
            existing = load(conn)
            merged = dict(existing)
            for e in wanted:
                old = existing.get(e.experiment_id)
                if old is None:
                    result.created.append(e.experiment_id)
                elif replace(old, end=e.end) != e:
                    raise ExperimentDefinitionError(_changed(old, e))
                elif old.end == e.end and old.description == e.description:
                    result.unchanged.append(e.experiment_id)
                    continue
                else:
                    result.updated.append(e.experiment_id)
                merged[e.experiment_id] = e
            validate_registry(merged.values())  # overlaps, salts, parameters with the rest
            for e in wanted:
                if e.experiment_id in result.created:
                    _insert(conn, e)
                elif e.experiment_id in result.updated:
                    conn.execute(UPDATE_EXPERIMENT, (e.end, e.description, e.experiment_id))
    except errors.IntegrityError as exc:
        raise ExperimentDefinitionError(
            f"PostgreSQL refused the experiments ({exc.diag.constraint_name}): "
            f"{exc.diag.message_primary}"
        ) from exc
    return result


def _insert(conn: psycopg.Connection, e: Experiment) -> None:
    conn.execute(
        INSERT_EXPERIMENT,
        (
            e.experiment_id,
            e.salt,
            e.layer,
            e.traffic_start,
            e.traffic_end,
            e.start,
            e.end,
            e.primary_metric,
            list(e.guardrail_metrics),
            e.description,
        ),
    )
    with conn.cursor() as cur:
        cur.executemany(
            INSERT_VARIANT,
            [
                (e.experiment_id, i, v.name, v.share, json.dumps(v.params))
                for i, v in enumerate(e.variants)
            ],
        )


def _changed(old: Experiment, new: Experiment) -> str:
    fields = [name for name in FIXED if getattr(old, name) != getattr(new, name)]
    return (
        f"experiment {old.experiment_id!r} is already defined with other {', '.join(fields)}; "
        "only its end date and description may change once defined (a new salt, slice or "
        "variant split would move profiles between variants): define a new experiment id"
    )
