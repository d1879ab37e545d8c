"""The viewing-event contract (schema/viewing_event.v1.schema.json) as Python names.

Players, the simulator, the Spark silver job and the Flink QoE job all speak this contract; the
field names here are the ones on the wire.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from pathlib import Path

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent / "viewing_event.v1.schema.json"


class EventType(StrEnum):
    PLAYBACK_REQUEST = "playback_request"
    START = "start"
    HEARTBEAT = "heartbeat"
    PAUSE = "pause"
    RESUME = "resume"
    SEEK = "seek"
    RENDITION_CHANGE = "rendition_change"
    STALL_START = "stall_start"
    STALL_END = "stall_end"
    ERROR = "error"
    STOP = "stop"


EVENT_TYPES = tuple(e.value for e in EventType)
DEVICES = ("tv", "mobile", "web", "tablet", "console")
HEARTBEAT_INTERVAL_MS = 30_000
FUTURE_TOLERANCE_MS = 86_400_000
"""An event time more than a day ahead of its Kafka timestamp is a broken clock: silver and the
QoE job both fall back to the Kafka timestamp."""

REQUIRED_FIELDS = (
    "schema_version",
    "event_id",
    "session_id",
    "user_id",
    "profile_id",
    "title_id",
    "device",
    "os",
    "country",
    "cdn",
    "event_type",
    "event_ts",
    "position_ms",
)
OPTIONAL_FIELDS = (
    "rendition",
    "bitrate_kbps",
    "buffer_ms",
    "startup_ms",
    "stall_ms",
    "error_code",
)


@cache
def json_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())
