"""The QoE job's Flink SQL, built from a QoeConfig by pure functions (testable without Flink).

Everything runs inside the JVM: the Kafka source with event-time watermarks, window TVFs (HOP for
concurrent viewers, TUMBLE for the QoE windows), the built-in PERCENTILE aggregate for startup
p50/p95, and the Kafka sinks. No Python UDF sits on the hot path.

Lateness: Flink's window TVFs emit one final, append-only result per window and have no
"allowed lateness" of their own, so the watermark lags the largest event time seen by
out-of-orderness + allowed lateness. A window closes (and is emitted once) when that watermark
passes its end; an event later than that is dropped by the window and reported on the
aggregates topic as a `late_event` record, found with CURRENT_WATERMARK (see late_events_insert).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schema.events import FUTURE_TOLERANCE_MS, HEARTBEAT_INTERVAL_MS
from schema.qoe import (
    QOE_WINDOW_MS,
    STARTUP_PERCENTILES,
    UNKNOWN_COUNTRY,
    UNKNOWN_DIMENSION,
    VIEWERS_SLIDE_MS,
    VIEWERS_WINDOW_MS,
)

# RFC 3339 UTC with milliseconds, the format of the event contract's event_ts.
TS_FORMAT = "yyyy-MM-dd''T''HH:mm:ss.SSS''Z''"


class QoeConfigError(ValueError):
    """A QoeConfig the job cannot run with; the message names the setting and its fix."""


@dataclass(frozen=True)
class Thresholds:
    """A QoE window raises an alert when it has at least min_attempts playback requests and
    breaches any of these limits."""

    min_attempts: int = 20
    max_startup_p95_ms: float = 4000.0
    max_rebuffer_ratio: float = 0.02
    max_error_rate: float = 0.05
    min_avg_bitrate_kbps: float = 1500.0


@dataclass(frozen=True)
class QoeConfig:
    bootstrap_servers: str
    events_topic: str = "viewing-events"
    aggregates_topic: str = "qoe-aggregates"
    alerts_topic: str = "qoe-alerts"
    group_id: str = "qoe-job"
    # group-offsets resumes where the last run committed (earliest when the group is new).
    startup_mode: str = "group-offsets"
    # Read up to the offsets that are latest at start, then finish (tests, backfills).
    bounded: bool = False
    out_of_orderness_ms: int = 5_000
    allowed_lateness_ms: int = 10_000
    # A partition with no events for this long stops holding the watermark back.
    idle_timeout_ms: int = 30_000
    # on-periodic (every 200 ms, cheap) or on-event (after every event: deterministic tests).
    watermark_emit: str = "on-periodic"
    viewers_window_ms: int = VIEWERS_WINDOW_MS
    viewers_slide_ms: int = VIEWERS_SLIDE_MS
    qoe_window_ms: int = QOE_WINDOW_MS
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS
    thresholds: Thresholds = field(default_factory=Thresholds)
    # at-least-once (results keyed by window, idempotent downstream) or exactly-once (Kafka
    # transactions committed on checkpoints: results are visible one checkpoint later).
    delivery: str = "at-least-once"
    transactional_id_prefix: str = "qoe-job"
    # The connector's security settings (`properties.security.protocol`, SASL mechanism and
    # JAAS line) from netflix_assets.clients.kafka; empty only for an unauthenticated cluster.
    kafka_properties: dict[str, str] = field(default_factory=dict)

    def connector_properties(self) -> dict[str, str]:
        return {"properties.bootstrap.servers": self.bootstrap_servers, **self.kafka_properties}

    def __post_init__(self) -> None:
        if self.delivery not in ("at-least-once", "exactly-once"):
            raise QoeConfigError(f"delivery {self.delivery!r}: use at-least-once or exactly-once")
        if self.watermark_emit not in ("on-periodic", "on-event"):
            raise QoeConfigError(
                f"watermark_emit {self.watermark_emit!r}: use on-periodic or on-event"
            )
        if self.viewers_window_ms % self.viewers_slide_ms:
            raise QoeConfigError(
                f"viewers window {self.viewers_window_ms} ms is not a multiple of its slide "
                f"{self.viewers_slide_ms} ms, which a HOP window needs"
            )

    @property
    def watermark_delay_ms(self) -> int:
        return self.out_of_orderness_ms + self.allowed_lateness_ms


def _interval(ms: int) -> str:
    """A day-to-second literal: a plain SECOND interval only holds two digits."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (
        f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' DAY TO SECOND(3)"
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _with(options: dict[str, str]) -> str:
    body = ",\n  ".join(f"{_quote(k)} = {_quote(v)}" for k, v in options.items())
    return f"WITH (\n  {body}\n)"


def source_ddl(cfg: QoeConfig) -> str:
    """viewing-events as a table; malformed messages become skipped rows, never failures."""
    options = {
        "connector": "kafka",
        "topic": cfg.events_topic,
        **cfg.connector_properties(),
        "properties.group.id": cfg.group_id,
        "properties.auto.offset.reset": "earliest",
        "scan.startup.mode": cfg.startup_mode,
        "scan.watermark.emit.strategy": cfg.watermark_emit,
        "scan.watermark.idle-timeout": f"{cfg.idle_timeout_ms} ms",
        "format": "json",
        "json.ignore-parse-errors": "true",
        "json.fail-on-missing-field": "false",
        "json.timestamp-format.standard": "ISO-8601",
    }
    if cfg.bounded:
        options["scan.bounded.mode"] = "latest-offset"
    # Only the fields the job reads are declared: the JSON format skips the others (user and
    # profile ids, os, position, rendition, buffer, error code) without converting them, and
    # the planner does not push a projection into this source (it has a watermark and
    # metadata), so a declared field costs a conversion per event even when nothing reads it.
    return f"""CREATE TABLE viewing_events (
  event_id STRING,
  session_id STRING,
  title_id STRING,
  device STRING,
  country STRING,
  cdn STRING,
  event_type STRING,
  event_ts TIMESTAMP_LTZ(3),
  bitrate_kbps INT,
  startup_ms INT,
  stall_ms INT,
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  -- The event time the watermark follows, with a clock that is broken beyond belief (more
  -- than FUTURE_TOLERANCE ahead of the Kafka timestamp) replaced by the Kafka timestamp: one
  -- event dated 2099 must not push the watermark past every real window.
  row_ts AS CASE WHEN event_ts > kafka_ts + {_interval(FUTURE_TOLERANCE_MS)} THEN kafka_ts
    ELSE event_ts END,
  WATERMARK FOR row_ts AS row_ts - {_interval(cfg.watermark_delay_ms)}
) {_with(options)}"""


def valid_events_view() -> str:
    """Rows the windows can use: a parse error leaves nulls, and a null event time would fail the
    window operator, so such rows stop here; so do events from a clock far in the future (the
    lake quarantines them as far_future_ts with the same tolerance)."""
    return f"""CREATE TEMPORARY VIEW valid_events AS
SELECT
  event_id, session_id, title_id, event_type, row_ts AS event_ts,
  COALESCE(device, '{UNKNOWN_DIMENSION}') AS device,
  COALESCE(cdn, '{UNKNOWN_DIMENSION}') AS cdn,
  COALESCE(country, '{UNKNOWN_COUNTRY}') AS country,
  bitrate_kbps, startup_ms, stall_ms
FROM viewing_events
WHERE event_ts IS NOT NULL AND session_id IS NOT NULL AND title_id IS NOT NULL
  AND event_type IS NOT NULL
  AND event_ts <= kafka_ts + {_interval(FUTURE_TOLERANCE_MS)}"""


def _sink_options(cfg: QoeConfig, topic: str, sink: str) -> dict[str, str]:
    options = {
        "connector": "kafka",
        "topic": topic,
        **cfg.connector_properties(),
        "key.format": "raw",
        "key.fields": "title_id",
        "value.format": "json",
        "value.fields-include": "ALL",
        "sink.delivery-guarantee": cfg.delivery,
    }
    if cfg.delivery == "exactly-once":
        options["sink.transactional-id-prefix"] = f"{cfg.transactional_id_prefix}-{sink}"
        # Below the broker's transaction.max.timeout.ms (15 min by default).
        options["properties.transaction.timeout.ms"] = "600000"
    return options


VIEWERS_COLUMNS = """  kind STRING,
  title_id STRING,
  window_start STRING,
  window_end STRING,
  viewers BIGINT"""

QOE_WINDOW_COLUMNS = """  kind STRING,
  title_id STRING,
  device STRING,
  cdn STRING,
  country STRING,
  window_start STRING,
  window_end STRING,
  events BIGINT,
  attempts BIGINT,
  starts BIGINT,
  startup_p50_ms DOUBLE,
  startup_p95_ms DOUBLE,
  stall_count BIGINT,
  stall_ms BIGINT,
  playback_ms BIGINT,
  rebuffer_ratio DOUBLE,
  avg_bitrate_kbps DOUBLE,
  errors BIGINT,
  error_rate DOUBLE"""

# An alert carries every measurement of its window, not only the breached ones: it reads
# alone, and the planner then computes the QoE windows once for both sinks (with fewer columns
# the alerts would get a second aggregation of the whole stream of their own).
ALERT_COLUMNS = """  alert_id STRING,
  kind STRING,
  title_id STRING,
  device STRING,
  cdn STRING,
  country STRING,
  window_start STRING,
  window_end STRING,
  attempts BIGINT,
  breaches ARRAY<STRING>,
  startup_p95_ms DOUBLE,
  rebuffer_ratio DOUBLE,
  error_rate DOUBLE,
  avg_bitrate_kbps DOUBLE,
  events BIGINT,
  starts BIGINT,
  startup_p50_ms DOUBLE,
  stall_count BIGINT,
  stall_ms BIGINT,
  playback_ms BIGINT,
  errors BIGINT"""

LATE_EVENT_COLUMNS = """  kind STRING,
  title_id STRING,
  event_id STRING,
  session_id STRING,
  event_type STRING,
  event_ts STRING,
  watermark_ts STRING,
  dropped_from_qoe BOOLEAN,
  dropped_from_viewers BOOLEAN,
  late_for_viewers BOOLEAN"""


def sink_ddls(cfg: QoeConfig) -> list[str]:
    """Three record kinds share qoe-aggregates (each carries `kind`); alerts have their topic."""
    sinks = [
        ("concurrent_viewers_sink", VIEWERS_COLUMNS, cfg.aggregates_topic, "viewers"),
        ("qoe_windows_sink", QOE_WINDOW_COLUMNS, cfg.aggregates_topic, "windows"),
        ("late_events_sink", LATE_EVENT_COLUMNS, cfg.aggregates_topic, "late"),
        ("qoe_alerts_sink", ALERT_COLUMNS, cfg.alerts_topic, "alerts"),
    ]
    return [
        f"CREATE TABLE {name} (\n{columns}\n) {_with(_sink_options(cfg, topic, sink))}"
        for name, columns, topic, sink in sinks
    ]


def _fmt(column: str) -> str:
    return f"DATE_FORMAT({column}, '{TS_FORMAT}')"


def concurrent_viewers_insert(cfg: QoeConfig) -> str:
    """Distinct sessions with a start or heartbeat in the last window, emitted every slide."""
    return f"""INSERT INTO concurrent_viewers_sink
SELECT 'concurrent_viewers', title_id, {_fmt("window_start")}, {_fmt("window_end")},
  COUNT(DISTINCT session_id)
FROM TABLE(HOP(TABLE valid_events, DESCRIPTOR(event_ts),
  {_interval(cfg.viewers_slide_ms)}, {_interval(cfg.viewers_window_ms)}))
WHERE event_type IN ('start', 'heartbeat')
GROUP BY title_id, window_start, window_end"""


def qoe_windows_view(cfg: QoeConfig) -> str:
    """Tumbling QoE windows per title x device x cdn x country.

    rebuffer_ratio = stall time / (stall time + playback time), where playback time is
    heartbeats x heartbeat interval (a heartbeat marks each 30 s of playback)."""
    percentiles = ",\n  ".join(
        f"PERCENTILE(startup_ms, {p}) FILTER (WHERE event_type = 'start') AS {name}"
        for name, p in STARTUP_PERCENTILES.items()
    )
    return f"""CREATE TEMPORARY VIEW qoe_windows AS
SELECT title_id, device, cdn, country, window_start, window_end,
  COUNT(*) AS events,
  COUNT(*) FILTER (WHERE event_type = 'playback_request') AS attempts,
  COUNT(*) FILTER (WHERE event_type = 'start') AS starts,
  {percentiles},
  COUNT(*) FILTER (WHERE event_type = 'stall_end') AS stall_count,
  COALESCE(SUM(CAST(stall_ms AS BIGINT)) FILTER (WHERE event_type = 'stall_end'), 0) AS stall_ms,
  COUNT(*) FILTER (WHERE event_type = 'heartbeat') * {cfg.heartbeat_interval_ms} AS playback_ms,
  AVG(CAST(bitrate_kbps AS DOUBLE)) FILTER (WHERE event_type = 'heartbeat') AS avg_bitrate_kbps,
  COUNT(*) FILTER (WHERE event_type = 'error') AS errors
FROM TABLE(TUMBLE(TABLE valid_events, DESCRIPTOR(event_ts), {_interval(cfg.qoe_window_ms)}))
GROUP BY title_id, device, cdn, country, window_start, window_end"""


def _ratio(numerator: str, denominator: str) -> str:
    return (
        f"CASE WHEN {denominator} > 0 THEN CAST({numerator} AS DOUBLE) / {denominator} "
        "ELSE CAST(NULL AS DOUBLE) END"
    )


def qoe_metrics_view() -> str:
    """The window aggregates with their ratios: what both the aggregates and alerts sinks read."""
    return f"""CREATE TEMPORARY VIEW qoe_metrics AS
SELECT title_id, device, cdn, country,
  {_fmt("window_start")} AS window_start, {_fmt("window_end")} AS window_end,
  events, attempts, starts, startup_p50_ms, startup_p95_ms, stall_count, stall_ms, playback_ms,
  {_ratio("stall_ms", "(stall_ms + playback_ms)")} AS rebuffer_ratio,
  avg_bitrate_kbps, errors,
  {_ratio("errors", "attempts")} AS error_rate
FROM qoe_windows"""


def qoe_windows_insert() -> str:
    return """INSERT INTO qoe_windows_sink
SELECT 'qoe_window', title_id, device, cdn, country, window_start, window_end, events, attempts,
  starts, startup_p50_ms, startup_p95_ms, stall_count, stall_ms, playback_ms, rebuffer_ratio,
  avg_bitrate_kbps, errors, error_rate
FROM qoe_metrics"""


def breach_conditions(t: Thresholds) -> dict[str, str]:
    """Breach name -> SQL condition on a qoe_metrics row (a NULL metric never breaches)."""
    return {
        "startup_p95_ms": f"startup_p95_ms > {t.max_startup_p95_ms}",
        "rebuffer_ratio": f"rebuffer_ratio > {t.max_rebuffer_ratio}",
        "error_rate": f"error_rate > {t.max_error_rate}",
        "avg_bitrate_kbps": f"avg_bitrate_kbps < {t.min_avg_bitrate_kbps}",
    }


def alerts_insert(cfg: QoeConfig) -> str:
    """One alert per breaching window; alert_id is a hash of the window key, so a replayed alert
    (at-least-once) is recognisably the same alert."""
    conditions = breach_conditions(cfg.thresholds)
    entries = ", ".join(
        f"IF({cond}, '{name}', CAST(NULL AS STRING))" for name, cond in conditions.items()
    )
    any_breach = " OR ".join(f"({cond})" for cond in conditions.values())
    key = "CONCAT_WS('|', title_id, device, cdn, country, window_end)"
    return f"""INSERT INTO qoe_alerts_sink
SELECT MD5({key}), 'qoe_alert', title_id, device, cdn, country, window_start, window_end,
  attempts, ARRAY_REMOVE(ARRAY[{entries}], CAST(NULL AS STRING)),
  startup_p95_ms, rebuffer_ratio, error_rate, avg_bitrate_kbps,
  events, starts, startup_p50_ms, stall_count, stall_ms, playback_ms, errors
FROM qoe_metrics
WHERE attempts >= {cfg.thresholds.min_attempts} AND ({any_breach})"""


def _epoch_ms(column: str) -> str:
    """Epoch milliseconds of a TIMESTAMP_LTZ (TIMESTAMPDIFF is an INT, hence the cast)."""
    return (
        f"(CAST(TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 3), {column}) AS BIGINT) * 1000 "
        f"+ EXTRACT(MILLISECOND FROM {column}))"
    )


def _window_fired(size_ms: int, slide_ms: int, which: str) -> str:
    """True when the event's first or last window has fired: Flink drops an event from every
    window whose end - 1 ms is at or below the watermark it meets (windows align to the epoch,
    UTC). The first window holding an event ends at its slide's end, the last one `size` after
    its slide's start."""
    ms = _epoch_ms("event_ts")
    start = f"({ms} - MOD({ms}, {slide_ms}))"
    end = f"({start} + {slide_ms if which == 'first' else size_ms})"
    return f"TO_TIMESTAMP_LTZ({end} - 1, 3) <= CURRENT_WATERMARK(event_ts)"


def late_events_insert(cfg: QoeConfig) -> str:
    """Events that reached a window after it had fired: `dropped_from_qoe` (its one QoE window),
    `dropped_from_viewers` (every viewers window holding it), `late_for_viewers` (at least the
    first: a sliding window's late event still counts in the windows yet to fire). With
    `watermark_ts`, a recomputation can leave it out of exactly the windows that missed it.
    CURRENT_WATERMARK is the watermark right after the source, which is the windows' watermark
    at parallelism 1 and an upper bound above it (so this can over-report) when a shuffle
    merges several source subtasks."""
    qoe_late = _window_fired(cfg.qoe_window_ms, cfg.qoe_window_ms, "last")
    watching = "event_type IN ('start', 'heartbeat') AND "
    viewers_dropped = watching + _window_fired(cfg.viewers_window_ms, cfg.viewers_slide_ms, "last")
    viewers_late = watching + _window_fired(cfg.viewers_window_ms, cfg.viewers_slide_ms, "first")
    return f"""INSERT INTO late_events_sink
SELECT 'late_event', title_id, event_id, session_id, event_type, {_fmt("event_ts")},
  {_fmt("CURRENT_WATERMARK(event_ts)")},
  COALESCE({qoe_late}, FALSE), COALESCE({viewers_dropped}, FALSE),
  COALESCE({viewers_late}, FALSE)
FROM valid_events
WHERE ({qoe_late}) OR ({viewers_late})"""


def ddl_statements(cfg: QoeConfig) -> list[str]:
    """Tables and views, in the order they must be created."""
    return [
        source_ddl(cfg),
        valid_events_view(),
        *sink_ddls(cfg),
        qoe_windows_view(cfg),
        qoe_metrics_view(),
    ]


def insert_statements(cfg: QoeConfig) -> list[str]:
    """The job's four pipelines; run as one statement set, they share one Kafka source."""
    return [
        concurrent_viewers_insert(cfg),
        qoe_windows_insert(),
        alerts_insert(cfg),
        late_events_insert(cfg),
    ]
