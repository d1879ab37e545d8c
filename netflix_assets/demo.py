"""The end-to-end demo on embedded defaults: each capability adds a step here as it lands.

The demo records its runs in the DAGSTER_HOME instance, so `make ui` shows them afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from dagster import DagsterInstance, materialize
from rich.console import Console

from netflix_assets.definitions import defs
from netflix_assets.stack import manager


def platform_step(console: Console, instance: DagsterInstance) -> None:
    """The catalog schema: proves Dagster, the resources and PostgreSQL work together."""
    from assets.catalog import catalog_schema

    result = materialize(
        [catalog_schema], resources=defs.resources, instance=instance, raise_on_error=True
    )
    meta = result.asset_materializations_for_node("catalog_schema")[0].metadata
    console.print(f"catalog_schema: {meta['table_count'].value} tables in PostgreSQL")


def lake_step(console: Console, instance: DagsterInstance) -> None:
    """Two days of simulated viewing through Kafka, bronze, silver, sessions and gold."""
    from datetime import UTC, datetime, timedelta

    from assets.lake import ASSETS as LAKE_ASSETS
    from netflix_assets.lake_query import query
    from resources.kafka import KafkaResource
    from streaming.produce import produce_simulated
    from streaming.simulator import SimConfig

    today = datetime.now(UTC).date()
    days = [today - timedelta(days=1), today]
    report = produce_simulated(
        KafkaResource(), SimConfig(users=400, titles=80, days=2, start=days[0], seed=11)
    )
    console.print(f"simulated {report.produced:,} events at {report.rate:,.0f}/s")
    everything = [*LAKE_ASSETS]
    materialize(
        everything,
        selection=["bronze_viewing_events"],
        resources=defs.resources,
        instance=instance,
        raise_on_error=True,
    )
    downstream = [
        "silver_viewing_events",
        "silver_quarantine",
        "silver_playback_sessions",
        "gold_title_daily",
        "gold_qoe_daily",
        "gold_user_daily",
    ]
    for day in days:
        result = materialize(
            everything,
            selection=downstream,
            partition_key=day.isoformat(),
            resources=defs.resources,
            instance=instance,
            raise_on_error=True,
        )
        failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
        console.print(f"{day}: lake materialized; failed checks: {failed or 'none'}")
    top = query(
        "SELECT title_id, sum(views) AS views, round(sum(watch_hours), 1) AS watch_hours "
        "FROM gold_title_daily GROUP BY title_id ORDER BY views DESC LIMIT 5"
    )
    console.print("top titles (netflix-assets query):", top.to_pylist())


STEPS: list[Callable[[Console, DagsterInstance], None]] = [platform_step, lake_step]


def run() -> None:
    console = Console()
    console.rule("netflix-assets demo")
    for name, outcome in manager.up().items():
        console.print(f"stack {name}: {outcome}")
    instance = DagsterInstance.get()
    for step in STEPS:
        console.rule(step.__name__.removesuffix("_step"))
        step(console, instance)
    console.rule("done")
