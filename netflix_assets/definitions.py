"""The code location: every asset, check, sensor, job and resource composed into one Definitions.

It only composes: assets, their checks and jobs come from `assets/` (one module per domain), every
sensor and schedule from `sensors/` (one module per trigger), resources from
`netflix_assets/resources.py`.
"""

from __future__ import annotations

from dagster import Definitions

from assets import catalog, experiments, lake, product, recs, streaming, video
from netflix_assets.resources import default_resources
from sensors import (
    automation,
    qoe_stream,
    stream_reconciliation,
    uploads,
    viewing_events,
    viewing_history_partitions,
)

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
    jobs=[*video.JOBS, *lake.JOBS, *recs.JOBS, *streaming.JOBS, *product.JOBS],
    schedules=[*stream_reconciliation.SCHEDULES, *viewing_history_partitions.SCHEDULES],
    sensors=[
        *uploads.SENSORS,
        *viewing_events.SENSORS,
        *automation.SENSORS,
        *qoe_stream.SENSORS,
    ],
    resources=default_resources(),
)
