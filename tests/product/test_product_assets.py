"""The product assets through dagster.materialize on the real PostgreSQL (a scratch database)
and a lake in a temporary object store: billing_run, viewing_history with its reconciliation,
the partitions ahead, the view refreshes, the snapshots and the gold tables."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from dagster import DagsterInstance, materialize
from deltalake import write_deltalake

from assets import product
from assets.catalog import catalog_schema
from netflix_assets.product import viewing
from netflix_assets.product.simulation import (
    AccountSimConfig,
    ensure_catalog,
    load_population,
    simulate_accounts,
)
from resources.object_store import ObjectStoreResource
from resources.postgres import PostgresResource
from resources.spark import SparkResource
from schema import tables

pytestmark = pytest.mark.stack
DAY = date(2026, 11, 10)


def silver_sessions(db: PostgresResource, store: ObjectStoreResource, day: date, n: int) -> int:
    """A day of silver_playback_sessions whose viewers are the database's profiles."""
    with db.connect() as conn:
        population = load_population(conn, titles=15, seed=303)
    rng = random.Random(5)
    rows = []
    for k in range(n):
        account = rng.choice(population.accounts)
        start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
            seconds=rng.randrange(86_400)
        )
        watched = rng.randrange(0, 3_600_000)
        rows.append(
            {
                "session_id": f"{day}-{k}",
                "session_start": start,
                "user_id": account.account_id,
                "profile_id": rng.choice(account.profiles),
                "title_id": rng.choice(population.titles).title_id,
                "device": "tv",
                "country": account.country,
                "watched_ms": watched,
                "started": watched > 0,
                "completed": watched > 3_000_000,
                "session_date": day,
            }
        )
    write_deltalake(
        store.table_uri(tables.SILVER_PLAYBACK_SESSIONS),
        pa.Table.from_pylist(rows),
        mode="overwrite",
        partition_by=["session_date"],
    )
    return n


@pytest.fixture(scope="module")
def seeded(product_db: PostgresResource) -> PostgresResource:
    with product_db.connect() as conn:
        simulate_accounts(conn, AccountSimConfig(accounts=150, days=2, start=DAY, seed=303))
        ensure_catalog(conn, titles=15, seed=303)
    return product_db


def run(assets, db: PostgresResource, store: ObjectStoreResource, partition=None):
    # SparkResource starts no JVM until an asset asks it for a session.
    resources = {
        "postgres": db,
        "object_store": store,
        "spark": SparkResource(master="local[2]", shuffle_partitions=2),
    }
    return materialize(
        [catalog_schema, *product.ASSETS],
        selection=assets,
        partition_key=partition,
        resources=resources,
        instance=DagsterInstance.ephemeral(),
    )


def checks(result) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def test_viewing_history_loads_a_day_idempotently_and_reconciles(
    seeded: PostgresResource, object_store: ObjectStoreResource
) -> None:
    sessions = silver_sessions(seeded, object_store, DAY, 400)
    assert run(["viewing_history_partitions"], seeded, object_store).success
    for _ in range(2):  # the second run replaces the day: no duplicates
        result = run(["viewing_history"], seeded, object_store, DAY.isoformat())
        assert result.success and checks(result) == {"matches_silver_sessions": True}
        with seeded.connect() as conn:
            assert viewing.day_count(conn, DAY) == sessions
    meta = result.asset_materializations_for_node("viewing_history")[0].metadata
    assert meta["rows"].value == sessions and meta["unknown_profiles"].value == 0
    with seeded.connect() as conn:
        names = viewing.partitions(conn)
    now = datetime.now(UTC).date()
    ahead = viewing.partition_name(viewing.month_start(now, product.MONTHS_AHEAD))
    assert viewing.partition_name(viewing.month_start(DAY)) in names and ahead in names
    result = run(["top_titles_by_country_view", "profile_engagement_view"], seeded, object_store)
    assert result.success
    with seeded.connect() as conn:
        engaged = conn.execute("SELECT sum(sessions) FROM product.profile_engagement").fetchone()
    assert engaged[0] == sessions


def test_a_profile_s_last_views_use_the_index_on_the_recent_partitions_only(
    seeded: PostgresResource,
) -> None:
    profile = "s303-a1-p0"
    n = 5000  # rows a day: enough that the planner prefers the index
    with seeded.connect() as conn:
        viewing.ensure_partitions(conn, date(2026, 8, 1), months_ahead=6)
        for day in (date(2026, 8, 20), date(2026, 10, 31), date(2026, 11, 2)):
            start = datetime.combine(day, datetime.min.time(), UTC)
            viewing.load_day(
                conn,
                day,
                pa.table(
                    {
                        "session_id": [f"{day}-{k}" for k in range(n)],
                        "session_date": [day] * n,
                        "started_at": [start + timedelta(seconds=k) for k in range(n)],
                        "account_id": ["s303-a1"] * n,
                        "profile_id": [
                            profile if k % (n // 10) == 0 else f"x{k}" for k in range(n)
                        ],
                        "title_id": ["t"] * n,
                        "device": ["tv"] * n,
                        "country": ["US"] * n,
                        "watched_ms": [1000] * n,
                        "completed": [True] * n,
                    }
                ),
            )
    with seeded.connect() as conn:
        conn.execute("ANALYZE product.viewing_history")
        plan = conn.execute(
            "EXPLAIN (FORMAT TEXT) " + viewing.last_views_sql(),
            (profile, datetime(2026, 11, 1, tzinfo=UTC)),
        ).fetchall()
        found = conn.execute(
            viewing.last_views_sql(), (profile, datetime(2026, 10, 1, tzinfo=UTC))
        ).fetchall()
    text = "\n".join(row[0] for row in plan)
    # only November's days are planned: October's and August's months are pruned
    assert "viewing_history_2026_11_02" in text
    assert "viewing_history_2026_10" not in text and "viewing_history_2026_08" not in text
    # read through the day's (profile, started_at) index, an index or a bitmap scan
    assert "Seq Scan" not in text and "viewing_history_2026_11_02_profile_recent" in text, text
    # newest first, across the day partitions of two months
    assert [row[1].date() for row in found] == [date(2026, 11, 2)] * 10 + [date(2026, 10, 31)] * 10


def test_billing_snapshots_and_gold_revenue_reconcile_with_postgres(
    seeded: PostgresResource, object_store: ObjectStoreResource
) -> None:
    silver_sessions(seeded, object_store, DAY, 200)
    first = run(["billing_run"], seeded, object_store, DAY.isoformat())
    assert first.success
    created = first.asset_materializations_for_node("billing_run")[0].metadata
    again = run(["billing_run"], seeded, object_store, DAY.isoformat())
    rerun = again.asset_materializations_for_node("billing_run")[0].metadata
    assert sum(created["invoices_created"].value.values()) > 0
    assert rerun["invoices_created"].value == {}
    assert run(["revenue_daily_view"], seeded, object_store).success
    snap = run(list(product.SNAPSHOTS), seeded, object_store)
    assert snap.success
    result = run(
        ["gold_revenue_daily", "gold_engagement_by_plan"],
        seeded,
        object_store,
        DAY.isoformat(),
    )
    assert result.success
    assert checks(result) == {"revenue_matches_paid_invoices": True}
    meta = result.asset_materializations_for_node("gold_revenue_daily")[0].metadata
    assert meta["rows"].value > 0 and meta["mrr_cents_by_plan"].value
    engagement = result.asset_materializations_for_node("gold_engagement_by_plan")[0].metadata
    hours = engagement["watch_hours_by_plan"].value
    # 'none': a session before its account signed up (the fixture's viewers sign up all day)
    assert set(hours) <= {"basic", "standard", "premium", "none"}
    assert hours.get("none", 0) < 0.2 * sum(hours.values())
    with seeded.connect() as conn:
        mv = conn.execute(
            "SELECT sum(revenue_cents) FROM product.revenue_daily WHERE day = %s", (DAY,)
        ).fetchone()[0]
    lake_total = sum(
        int(v)
        for v in result.get_asset_check_evaluations()[0]
        .metadata["gold_revenue_cents"]
        .value.values()
    )
    assert mv == lake_total
