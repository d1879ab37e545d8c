"""Kafka topic names and partition counts: the one place they are spelled."""

import os

UPLOADS = os.environ.get("NETFLIX_ASSETS_UPLOADS_TOPIC", "title-uploads")
"""Overridable so the test suite keeps its upload events off the topic `dagster dev` reads."""
VIEWING_EVENTS = "viewing-events"
QOE_AGGREGATES = "qoe-aggregates"
QOE_ALERTS = "qoe-alerts"
EXPERIMENT_EXPOSURES = "experiment-exposures"
"""One event per experiment a recommendation response was served under (experiments/exposures)."""

PARTITIONS = {
    UPLOADS: 1,
    # Keyed by session_id, so one session's events keep their order within a partition.
    VIEWING_EVENTS: 4,
    QOE_AGGREGATES: 1,
    QOE_ALERTS: 1,
    # Keyed by profile_id, so one profile's exposures keep their order.
    EXPERIMENT_EXPOSURES: 4,
}

ALL = tuple(PARTITIONS)
