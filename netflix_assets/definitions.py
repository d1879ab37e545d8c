"""The code location: every asset, check, sensor, job and resource composed into one Definitions."""

from __future__ import annotations

from dagster import Definitions

from assets import catalog, lake, streaming
from netflix_assets.resources import default_resources

defs = Definitions(
    assets=[*catalog.ASSETS, *lake.ASSETS, *streaming.ASSETS],
    jobs=[*lake.JOBS],
    sensors=[*streaming.SENSORS],
    resources=default_resources(),
)
