"""The resource set every asset, sensor and job is bound to, with local-stack defaults.

Production overrides come from the environment (NETFLIX_ASSETS_* variables, read by each
resource's defaults) so the same Definitions object serves both.
"""

from __future__ import annotations

from typing import Any

from resources.ffmpeg import FFmpegResource
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.postgres import PostgresResource
from resources.records import RecordIOManager
from resources.redis import RedisResource
from resources.spark import SparkResource


def default_resources() -> dict[str, Any]:
    object_store = ObjectStoreResource()
    return {
        "kafka": KafkaResource(),
        "redis": RedisResource(),
        "postgres": PostgresResource(),
        "spark": SparkResource(),
        "object_store": object_store,
        "ffmpeg": FFmpegResource(),
        "video_records": RecordIOManager(object_store=object_store),
    }
