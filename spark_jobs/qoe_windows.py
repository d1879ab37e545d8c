"""The real-time QoE job's windows recomputed in batch by Spark, from the lake's bronze table.

The PyFlink job (streaming/qoe_sql.py) emits each window once, when its watermark passes, and
keeps no history. These functions compute the same windows from what the lake kept, with the same
definitions, so a stream that crashed, restarted or dropped input can be reconciled against the
durable record: every closed window the stream published must equal its batch recomputation.

Definitions shared with the stream (docs/STREAMING.md): windows aligned to the epoch in UTC;
attempts = playback_request events, startup percentiles continuous over `start` events,
playback_ms = heartbeats x heartbeat interval, rebuffer_ratio = stall_ms / (stall_ms +
playback_ms), error_rate = errors / attempts.

Input is every bronze event the stream's own rules accept (its `valid_events` view), not silver's
stricter contract: the stream counts a re-delivered event again, an event of an unknown type, or
one missing a device, CDN or country (as 'unknown' / 'ZZ'), so the recomputation does too. Events
the stream reported as late are left out of the windows that had fired when they came (one copy
per report; a sliding window's late event still counts in the windows yet to fire). With that, a
recomputation over the same Kafka offsets is exact (streaming/reconcile.py compares them) as
long as the job runs at parallelism 1, where its late reports are exact.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from schema.events import HEARTBEAT_INTERVAL_MS
from schema.qoe import (
    QOE_WINDOW_MS,
    STARTUP_PERCENTILES,
    UNKNOWN_COUNTRY,
    UNKNOWN_DIMENSION,
    VIEWERS_SLIDE_MS,
    VIEWERS_WINDOW_MS,
)
from spark_jobs.silver import FUTURE_TOLERANCE, classify

LateReport = tuple[str, str]
"""(event_id, watermark_ts) of one of the stream's late_event records."""
WINDOW_TS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
"""RFC 3339 UTC with milliseconds, as the stream writes window bounds (session time zone UTC)."""
BASE_COLUMNS = (
    "event_id",
    "session_id",
    "title_id",
    "event_type",
    "event_ts",
    "partition",
    "offset",
)
QOE_WINDOW_COLUMNS = (
    # the order of the stream's qoe_window records
    "title_id",
    "device",
    "cdn",
    "country",
    "window_start",
    "window_end",
    "events",
    "attempts",
    "starts",
    *STARTUP_PERCENTILES,
    "stall_count",
    "stall_ms",
    "playback_ms",
    "rebuffer_ratio",
    "avg_bitrate_kbps",
    "errors",
    "error_rate",
)


def stream_events(bronze: DataFrame) -> DataFrame:
    """Bronze rows as the stream's windows see them: parsed as silver parses them, then kept or
    dropped by the stream's rules (a row needs a readable event time, session, title and type,
    and a clock no more than a day ahead of Kafka's); a wrong-typed number is null, not a
    reason to drop the event."""
    ts = F.col("event_ts")
    future = F.col("kafka_ts") + F.expr(FUTURE_TOLERANCE)
    return (
        classify(bronze)
        .where(
            ts.isNotNull()
            & F.col("session_id").isNotNull()
            & F.col("title_id").isNotNull()
            & F.col("event_type").isNotNull()
            & (ts <= future)
        )
        .select(
            *BASE_COLUMNS,
            F.coalesce("device", F.lit(UNKNOWN_DIMENSION)).alias("device"),
            F.coalesce("cdn", F.lit(UNKNOWN_DIMENSION)).alias("cdn"),
            F.coalesce("country", F.lit(UNKNOWN_COUNTRY)).alias("country"),
            "bitrate_kbps",
            "startup_ms",
            "stall_ms",
        )
    )


def _without_missed_copies(keyed: DataFrame, late: list[LateReport]) -> DataFrame:
    """Event rows assigned to windows, without the copies the stream reported arriving after
    that window had fired (its watermark then at or past the window's end - 1 ms): per event
    and window as many copies as such reports, the last to arrive first (the late copy is the
    one that came after an on-time duplicate)."""
    if not late:
        return keyed
    reports = keyed.sparkSession.createDataFrame(late, "event_id string, watermark_ts string")
    reports = reports.select(
        "event_id", F.to_timestamp("watermark_ts", WINDOW_TS_FORMAT).alias("_wm")
    )
    missed = (
        keyed.select("event_id", "window")
        .distinct()
        .join(F.broadcast(reports), "event_id")
        .where(F.col("_wm") >= F.col("window.end") - F.expr("INTERVAL 1 MILLISECOND"))
        .groupBy("event_id", "window")
        .agg(F.count("*").alias("_missed"))
    )
    newest_first = Window.partitionBy("event_id", "window").orderBy(
        F.col("partition").desc(), F.col("offset").desc()
    )
    return (
        keyed.join(missed, ["event_id", "window"], "left")
        .withColumn("_copy", F.row_number().over(newest_first))
        .where(F.col("_missed").isNull() | (F.col("_copy") > F.col("_missed")))
        .drop("_missed", "_copy")
    )


def _windowed(
    events: DataFrame, size_ms: int, slide_ms: int, late: list[LateReport] | None
) -> DataFrame:
    """Each event in every window holding it (Spark's window() aligns to the epoch, as Flink's
    window TVFs do), less the copies the stream reported too late for that window."""
    window = F.window("event_ts", f"{size_ms / 1000:g} seconds", f"{slide_ms / 1000:g} seconds")
    return _without_missed_copies(events.withColumn("window", window), late or [])


def _bounds() -> list[Column]:
    return [
        F.date_format("window.start", WINDOW_TS_FORMAT).alias("window_start"),
        F.date_format("window.end", WINDOW_TS_FORMAT).alias("window_end"),
    ]


def _where_type(event_type: str, column: str) -> Column:
    return F.when(F.col("event_type") == event_type, F.col(column))


def _count_type(event_type: str) -> Column:
    return F.count(F.when(F.col("event_type") == event_type, 1))


def _ratio(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator.cast("double") / denominator)


def qoe_windows(
    events: DataFrame,
    window_ms: int = QOE_WINDOW_MS,
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
    late: list[LateReport] | None = None,
) -> DataFrame:
    """Tumbling QoE windows per title x device x cdn x country, the stream's `qoe_window`
    records (without `kind`); `late` are the stream's late reports."""
    keyed = _windowed(events, window_ms, window_ms, late)
    percentiles = [
        F.percentile(_where_type("start", "startup_ms"), F.lit(p)).alias(name)
        for name, p in STARTUP_PERCENTILES.items()
    ]
    windows = keyed.groupBy("title_id", "device", "cdn", "country", "window").agg(
        F.count("*").alias("events"),
        _count_type("playback_request").alias("attempts"),
        _count_type("start").alias("starts"),
        *percentiles,
        _count_type("stall_end").alias("stall_count"),
        F.coalesce(F.sum(_where_type("stall_end", "stall_ms")), F.lit(0)).alias("stall_ms"),
        (_count_type("heartbeat") * F.lit(heartbeat_interval_ms)).alias("playback_ms"),
        F.avg(_where_type("heartbeat", "bitrate_kbps").cast("double")).alias("avg_bitrate_kbps"),
        _count_type("error").alias("errors"),
    )
    return (
        windows.select("*", *_bounds())
        .withColumn(
            "rebuffer_ratio", _ratio(F.col("stall_ms"), F.col("stall_ms") + F.col("playback_ms"))
        )
        .withColumn("error_rate", _ratio(F.col("errors"), F.col("attempts")))
        .select(*QOE_WINDOW_COLUMNS)
    )


def concurrent_viewers(
    events: DataFrame,
    window_ms: int = VIEWERS_WINDOW_MS,
    slide_ms: int = VIEWERS_SLIDE_MS,
    late: list[LateReport] | None = None,
) -> DataFrame:
    """Distinct sessions with a start or heartbeat per title in each sliding window, the stream's
    `concurrent_viewers` records (without `kind`); `late` are the stream's late reports."""
    watching = events.where(F.col("event_type").isin("start", "heartbeat"))
    keyed = _windowed(watching, window_ms, slide_ms, late)
    return (
        keyed.groupBy("title_id", "window")
        .agg(F.countDistinct("session_id").alias("viewers"))
        .select("title_id", *_bounds(), "viewers")
    )
