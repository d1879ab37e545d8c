"""Time of an experiment readout at 1M profiles x 14 days: the statistics alone
(experiments.analysis.analyze) and, with --asset, the whole `experiment_results` asset.

Synthetic daily rows: each profile is exposed on a uniformly random day and has one row per day
from then on (about 7.5 rows per profile), a primary and a guardrail metric, each with a
pre-period covariate for CUPED. The readout covers every day (the cumulative-effect table), so it
is 14 daily analyses of both metrics. The baseline, timed in the same run, is 100k profiles.
Data generation is not timed.

With --asset, the rows are written as the `gold_experiment_daily` Delta table of a scratch
object store, the experiment is defined in a scratch PostgreSQL database (dropped at the end),
and `experiment_results` is materialized for the last day with the real resources: reading the
table, the readout, the results table, the plot and the sample-ratio check. The Spark session is
started before the clock.

    .venv/bin/python benchmarks/experiments_bench.py [--profiles 1000000] [--repeat 3] [--asset]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from netflix_assets.experiments.analysis import analyze
from netflix_assets.experiments.definitions import Experiment, Variant

DAYS = 14
EXPERIMENT = Experiment(
    "bench",
    "bench-salt",
    (Variant("control", 0.5), Variant("treatment", 0.5)),
    dt.date(2026, 3, 1),
    dt.date(2026, 3, 14),
    "watch_seconds",
    guardrail_metrics=("rebuffer_seconds",),
)


def daily_frame(n_profiles: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-03-01", periods=DAYS).date
    variant = np.where(rng.random(n_profiles) < 0.5, "control", "treatment")
    first = rng.integers(0, DAYS, n_profiles)
    level = rng.gamma(2.0, 600.0, n_profiles)
    rows_p = np.repeat(np.arange(n_profiles), DAYS - first)
    offsets = np.arange(rows_p.size) - np.repeat(
        np.cumsum(DAYS - first) - (DAYS - first), DAYS - first
    )
    rows_d = first[rows_p] + offsets
    watch = level[rows_p] * rng.gamma(1.0, 1.0, rows_p.size)
    return pd.DataFrame(
        {
            "profile_id": rows_p,
            "variant": pd.Categorical(variant[rows_p]),
            "date": days[rows_d],
            "watch_seconds": watch,
            "rebuffer_seconds": rng.exponential(3.0, rows_p.size),
            "pre_watch_seconds": level[rows_p] * 14 * rng.gamma(5.0, 0.2, n_profiles)[rows_p],
            "pre_rebuffer_seconds": rng.exponential(40.0, n_profiles)[rows_p],
        }
    )


def timed(frame: pd.DataFrame) -> float:
    started = time.perf_counter()
    readout = analyze(frame, EXPERIMENT)
    elapsed = time.perf_counter() - started
    assert len(readout.cumulative) == 2 * DAYS
    return elapsed


@contextlib.contextmanager
def scratch_postgres() -> Iterator[str]:
    """A database of its own on the stack's PostgreSQL, migrated, dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from netflix_assets.product import migrations
    from resources.postgres import PostgresResource

    admin = PostgresResource().conninfo()
    name = f"experiments_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = make_conninfo(**{**conninfo_to_dict(admin), "dbname": name})
        migrations.migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def asset_runs(frames: dict[str, pd.DataFrame], repeat: int) -> None:
    """Materializes experiment_results over each frame as gold_experiment_daily, `repeat` times."""
    from dagster import DagsterInstance, materialize
    from deltalake import write_deltalake

    from assets.experiments import experiment_results
    from netflix_assets.experiments import registry
    from resources.object_store import ObjectStoreResource
    from resources.postgres import PostgresResource
    from resources.spark import SparkResource
    from schema import tables

    spark = SparkResource()
    spark.get_session()
    last = EXPERIMENT.start + dt.timedelta(days=DAYS - 1)
    with scratch_postgres() as dsn, tempfile.TemporaryDirectory() as root:
        postgres = PostgresResource(dsn=dsn)
        with postgres.connect() as conn:
            registry.define(conn, [EXPERIMENT])
        stores = {}
        for label, frame in frames.items():
            store = ObjectStoreResource(root=str(Path(root) / label))
            gold = frame.assign(
                experiment_id=EXPERIMENT.experiment_id,
                profile_id="p" + frame["profile_id"].astype(str),
                variant=frame["variant"].astype(str),
            )
            write_deltalake(store.table_uri(tables.GOLD_EXPERIMENT_DAILY), gold, mode="overwrite")
            stores[label] = store
        for run in range(1, repeat + 1):
            load = os.getloadavg()
            times = []
            for label, store in stores.items():
                started = time.perf_counter()
                result = materialize(
                    [experiment_results],
                    partition_key=last.isoformat(),
                    resources={"spark": spark, "object_store": store, "postgres": postgres},
                    instance=DagsterInstance.ephemeral(),
                )
                times.append((label, time.perf_counter() - started))
                assert result.success
            print(
                f"asset run {run} (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}): "
                + ", ".join(f"{label} {t:.1f} s" for label, t in times),
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profiles", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--asset", action="store_true", help="time the experiment_results asset")
    args = p.parse_args()
    base = daily_frame(args.profiles // 10)
    big = daily_frame(args.profiles)
    print(
        f"rows: baseline {len(base):,}, full {len(big):,} ({args.profiles:,} profiles, {DAYS} days)"
    )
    n = args.profiles
    if args.asset:
        asset_runs({f"{n // 10:,} profiles": base, f"{n:,} profiles": big}, args.repeat)
        return
    for i in range(args.repeat):
        load = os.getloadavg()
        b, f = timed(base), timed(big)
        print(
            f"run {i + 1} (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}): "
            f"{n // 10:,} profiles {b:.2f} s, {n:,} profiles {f:.2f} s ({f / b:.1f}x)"
        )


if __name__ == "__main__":
    main()
