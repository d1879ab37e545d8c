"""The product database's assets: daily billing, the viewing history loaded from the lake, the
month partitions created ahead, the materialized-view refreshes, snapshots of the product
tables into the lake, and the gold tables built on them (revenue, engagement by plan) with
their reconciliation checks against PostgreSQL. The work is in netflix_assets/product and
spark_jobs/gold.py; this module wires it."""

import time
from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
    multi_asset,
)
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import functions as F

from assets.catalog import catalog_schema
from netflix_assets.partitions import event_date_partitions
from netflix_assets.product import billing, viewing, views
from netflix_assets.product.billing import day_bounds
from netflix_assets.product.snapshots import SNAPSHOTS, read_snapshots
from netflix_assets.run_profiles import SPARK_TAGS, k8s_run_tags
from resources.object_store import ObjectStoreResource
from resources.postgres import PostgresResource
from resources.spark import SparkResource
from schema import tables
from schema.tables import LakeTable
from spark_jobs import delta_io, gold

GROUP = "product"
MONTHS_AHEAD = 3


@asset(group_name=GROUP, deps=[catalog_schema], kinds={"postgres"})
def viewing_history_partitions(
    context: AssetExecutionContext, postgres: PostgresResource
) -> MaterializeResult:
    """The month partitions of product.viewing_history from this month to MONTHS_AHEAD months
    ahead; the daily schedule keeps them ahead of the data."""
    with postgres.connect() as conn:
        created = viewing.ensure_partitions(conn, datetime.now(UTC).date(), MONTHS_AHEAD)
        present = viewing.partitions(conn)
    context.log.info(f"created {created or 'no'} partitions; present: {present}")
    return MaterializeResult(
        metadata={
            "created": MetadataValue.json(created),
            "partitions": MetadataValue.json(present),
        }
    )


@asset(
    group_name=GROUP,
    deps=[catalog_schema],
    partitions_def=event_date_partitions,
    kinds={"postgres"},
)
def billing_run(context: AssetExecutionContext, postgres: PostgresResource) -> MaterializeResult:
    """Invoices and payment attempts for the subscriptions starting or renewing on the day,
    dunning retries, and the status changes they cause, in one transaction; re-running a day
    creates nothing twice."""
    day = date.fromisoformat(context.partition_key)
    started = time.perf_counter()
    with postgres.connect() as conn:
        report = billing.run_billing(conn, day)
    return MaterializeResult(
        metadata={
            "invoices_created": MetadataValue.json(report.invoices_created),
            "payment_attempts": report.attempts,
            "succeeded": report.succeeded,
            "failed": report.failed,
            "now_past_due": report.now_past_due,
            "now_unpaid": report.now_unpaid,
            "collected_cents": MetadataValue.json(report.collected_cents),
            "seconds": round(time.perf_counter() - started, 3),
        }
    )


def _silver_sessions(store: ObjectStoreResource, day: date):
    """The day's silver_playback_sessions rows as Arrow, read by delta-rs (no JVM)."""
    uri = store.table_location(tables.SILVER_PLAYBACK_SESSIONS)
    if not DeltaTable.is_deltatable(uri):
        raise FileNotFoundError(
            f"no silver_playback_sessions table at {uri}; materialize the lake for {day} first"
        )
    return DeltaTable(uri).to_pyarrow_table(
        partitions=[("session_date", "=", day.isoformat())], columns=list(viewing.SILVER_COLUMNS)
    )


@asset(
    group_name=GROUP,
    deps=["silver_playback_sessions", viewing_history_partitions],
    partitions_def=event_date_partitions,
    kinds={"postgres"},
    check_specs=[AssetCheckSpec("matches_silver_sessions", asset="viewing_history", blocking=True)],
)
def viewing_history(
    context: AssetExecutionContext, postgres: PostgresResource, object_store: ObjectStoreResource
):
    """The day's playback sessions copied from silver into product.viewing_history with COPY,
    replacing the day in one transaction (idempotent per day)."""
    day = date.fromisoformat(context.partition_key)
    table = _silver_sessions(object_store, day)
    sessions = viewing.from_silver(table)
    started = time.perf_counter()
    with postgres.connect() as conn:
        created = viewing.ensure_partitions(conn, day, months_ahead=1)
        copied = viewing.load_day(conn, day, sessions)
    seconds = time.perf_counter() - started
    with postgres.connect() as conn:
        in_postgres = viewing.day_count(conn, day)
        unknown = conn.execute(
            "SELECT count(*) FROM product.viewing_history v WHERE v.started_at >= %s "
            "AND v.started_at < %s AND NOT EXISTS (SELECT 1 FROM product.profiles p "
            "WHERE p.profile_id = v.profile_id)",
            day_bounds(day),
        ).fetchone()[0]
    yield MaterializeResult(
        metadata={
            "rows": copied,
            "rows_per_second": round(copied / seconds) if seconds else 0,
            "partitions_created": MetadataValue.json(created),
            "unknown_profiles": unknown,
        }
    )
    yield AssetCheckResult(
        check_name="matches_silver_sessions",
        passed=in_postgres == table.num_rows,
        metadata={"silver_sessions": table.num_rows, "viewing_history_rows": in_postgres},
    )


def _refresh(postgres: PostgresResource, view: str) -> MaterializeResult:
    with postgres.connect() as conn:
        seconds = views.refresh(conn, view)
    with postgres.connect() as conn:
        rows = conn.execute(f"SELECT count(*) FROM product.{view}").fetchone()[0]
    return MaterializeResult(metadata={"rows": rows, "refresh_seconds": round(seconds, 3)})


@asset(group_name=GROUP, deps=[billing_run], kinds={"postgres"})
def revenue_daily_view(postgres: PostgresResource) -> MaterializeResult:
    """REFRESH MATERIALIZED VIEW CONCURRENTLY product.revenue_daily (readers never blocked)."""
    return _refresh(postgres, "revenue_daily")


@asset(group_name=GROUP, deps=[viewing_history], kinds={"postgres"})
def top_titles_by_country_view(postgres: PostgresResource) -> MaterializeResult:
    """REFRESH MATERIALIZED VIEW CONCURRENTLY product.top_titles_by_country."""
    return _refresh(postgres, "top_titles_by_country")


@asset(group_name=GROUP, deps=[viewing_history], kinds={"postgres"})
def profile_engagement_view(postgres: PostgresResource) -> MaterializeResult:
    """REFRESH MATERIALIZED VIEW CONCURRENTLY product.profile_engagement."""
    return _refresh(postgres, "profile_engagement")


@multi_asset(
    outs={name: AssetOut(group_name=GROUP, kinds={"postgres", "delta"}) for name in SNAPSHOTS},
    deps=[billing_run],
)
def product_snapshots(
    context: AssetExecutionContext, postgres: PostgresResource, object_store: ObjectStoreResource
):
    """The product tables copied into the lake as Delta (overwritten, one consistent read), so
    Spark and `netflix-assets query` join accounts, plans and invoices with the viewing data."""
    with postgres.connect() as conn:
        snapshots = read_snapshots(conn)
    for name, table in snapshots.items():
        uri = object_store.table_location(tables.by_name(name))
        write_deltalake(uri, table, mode="overwrite", schema_mode="overwrite")
        yield MaterializeResult(
            asset_key=name,
            metadata={
                "uri": uri,
                "rows": table.num_rows,
                "delta_version": DeltaTable(uri).version(),
            },
        )


@asset(
    group_name=GROUP,
    deps=list(SNAPSHOTS),
    partitions_def=event_date_partitions,
    kinds={"spark", "delta"},
    op_tags=SPARK_TAGS,
    check_specs=[
        AssetCheckSpec("revenue_matches_paid_invoices", asset="gold_revenue_daily", blocking=True)
    ],
)
def gold_revenue_daily(
    context: AssetExecutionContext,
    spark: SparkResource,
    object_store: ObjectStoreResource,
    postgres: PostgresResource,
):
    """MRR, new and churned subscriptions, revenue and ARPU by plan and country for the day.
    Its check compares the day's revenue per currency with the paid invoices in PostgreSQL."""
    day = date.fromisoformat(context.partition_key)
    session = spark.get_session()

    def read(table: LakeTable):
        return session.read.format("delta").load(object_store.table_uri(table))

    rows = gold.revenue_daily(
        read(tables.PRODUCT_SUBSCRIPTIONS),
        read(tables.PRODUCT_INVOICES),
        read(tables.PRODUCT_ACCOUNTS),
        read(tables.PRODUCT_PLAN_PRICES),
        day,
    )
    path = object_store.table_uri(tables.GOLD_REVENUE_DAILY)
    delta_io.replace_day(rows, path, "revenue_date", day)
    written = session.read.format("delta").load(path).where(F.col("revenue_date") == day)
    lake = {
        r["currency"]: int(r["revenue"])
        for r in written.groupBy("currency").agg(F.sum("revenue_cents").alias("revenue")).collect()
        if r["revenue"]
    }
    with postgres.connect() as conn:
        paid = {
            currency.strip(): int(total)
            for currency, total in conn.execute(
                "SELECT currency, sum(amount_due_cents) FROM product.invoices "
                "WHERE status = 'paid' AND paid_at >= %s AND paid_at < %s GROUP BY currency",
                day_bounds(day),
            )
            if total
        }
    mrr = {
        f"{r['plan_id']}/{r['currency']}": int(r["mrr"])
        for r in written.groupBy("plan_id", "currency")
        .agg(F.sum("mrr_cents").alias("mrr"))
        .collect()
    }
    yield MaterializeResult(
        metadata={
            "uri": path,
            "rows": written.count(),
            "mrr_cents_by_plan": MetadataValue.json(mrr),
        }
    )
    yield AssetCheckResult(
        check_name="revenue_matches_paid_invoices",
        passed=lake == paid,
        metadata={
            "gold_revenue_cents": MetadataValue.json(lake),
            "postgres_paid_cents": MetadataValue.json(paid),
        },
    )


@asset(
    group_name=GROUP,
    deps=["silver_playback_sessions", "product_subscriptions"],
    partitions_def=event_date_partitions,
    kinds={"spark", "delta"},
    op_tags=SPARK_TAGS,
)
def gold_engagement_by_plan(
    context: AssetExecutionContext, spark: SparkResource, object_store: ObjectStoreResource
) -> MaterializeResult:
    """The day's viewing (accounts, profiles, sessions, watch hours per account, completion)
    by the plan each viewer's account had, and country."""
    day = date.fromisoformat(context.partition_key)
    session = spark.get_session()
    sessions = (
        session.read.format("delta")
        .load(object_store.table_uri(tables.SILVER_PLAYBACK_SESSIONS))
        .where(F.col("session_date") == day)
    )
    subscriptions = session.read.format("delta").load(
        object_store.table_uri(tables.PRODUCT_SUBSCRIPTIONS)
    )
    path = object_store.table_uri(tables.GOLD_ENGAGEMENT_BY_PLAN)
    delta_io.replace_day(
        gold.engagement_by_plan(sessions, subscriptions), path, "session_date", day
    )
    written = session.read.format("delta").load(path).where(F.col("session_date") == day)
    hours = {
        r["plan_id"]: round(r["h"], 2)
        for r in written.groupBy("plan_id").agg(F.sum("watch_hours").alias("h")).collect()
    }
    return MaterializeResult(
        metadata={
            "uri": path,
            "rows": written.count(),
            "watch_hours_by_plan": MetadataValue.json(hours),
        }
    )


ASSETS = [
    viewing_history_partitions,
    billing_run,
    viewing_history,
    revenue_daily_view,
    top_titles_by_country_view,
    profile_engagement_view,
    product_snapshots,
    gold_revenue_daily,
    gold_engagement_by_plan,
]
partitions_ahead_job = define_asset_job(
    "viewing_history_partitions_job",
    selection=[viewing_history_partitions],
    tags=k8s_run_tags("default"),
)
JOBS = [partitions_ahead_job]
"""Started daily by `viewing_history_partitions_daily` (sensors/viewing_history_partitions.py)."""
