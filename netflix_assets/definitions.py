"""The code location: every asset, check, sensor, job and resource composed into one Definitions."""

from __future__ import annotations

from dagster import Definitions

from assets import catalog, experiments, lake, product, recs, streaming, video
from netflix_assets.resources import default_resources
from sensors import automation, uploads, viewing_events

defs = Definitions(
    assets=[
        *catalog.ASSETS,
        *video.ASSETS,
        *lake.ASSETS,
        *recs.ASSETS,
        *streaming.ASSETS,
        *product.ASSETS,
        *experiments.ASSETS,
    ],
    asset_checks=streaming.CHECKS,
    jobs=[*video.JOBS, *lake.JOBS, *streaming.JOBS, *product.JOBS],
    schedules=[*streaming.SCHEDULES, *product.SCHEDULES],
    sensors=[
        *uploads.SENSORS,
        *viewing_events.SENSORS,
        *automation.SENSORS,
        *streaming.SENSORS,
    ],
    resources=default_resources(),
)
