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


STEPS: list[Callable[[Console, DagsterInstance], None]] = [platform_step]


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
