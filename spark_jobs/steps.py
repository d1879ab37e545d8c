"""The lake's steps, each defined once: the lake assets (assets/lake.py) and the spark-submit
entry point (spark_jobs/submit.py) both call these and differ only in what they do with the
result (Dagster metadata and checks, or a JSON line).

A step reads its input tables, writes its outputs (a date replaced in one commit, so a re-run is
idempotent) and returns what it wrote plus the figures its checks need, computed from what was
written rather than from what was meant to be written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from netflix_assets.clients.kafka import KafkaClient, KafkaSettings
from netflix_assets.clients.object_store import ObjectStoreOps
from netflix_assets.offsets import offset_gaps
from schema import tables
from schema.tables import LakeTable
from spark_jobs import bronze, delta_io, gold, sessions, silver, title_country

BOUNDED = ("completion_rate", "stall_ratio", "failure_rate", "ebvs_rate")
"""Gold columns that are rates, so must lie in [0, 1]."""


class StepInputMissing(RuntimeError):
    """The table a step reads has not been written yet; the message names the step to run."""


@dataclass(frozen=True)
class Written:
    """What a step left in one table: for a daily step, the rows of its date."""

    uri: str
    rows: int
    delta_version: int | None


@dataclass(frozen=True)
class BronzeResult:
    written: Written
    offset_ranges: dict[int, tuple[int, int]]
    kafka_dates: list[str]
    lost_offsets: dict[int, tuple[int, int]]
    """Acknowledged gaps: per partition, the offsets Kafka deleted before bronze read them."""
    topic_id: str | None = None
    """The Kafka topic id read (a re-created topic has another)."""


@dataclass(frozen=True)
class SilverResult:
    events: Written
    quarantine: Written
    bronze_rows: int
    """Bronze rows in scope: valid ones of the event date, bad ones of the Kafka date."""
    duplicates: int
    distinct_event_ids: int
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        """Every bronze row of the day is in silver, in quarantine, or a dropped duplicate."""
        return self.bronze_rows == self.events.rows + self.quarantine.rows + self.duplicates


@dataclass(frozen=True)
class SessionsResult:
    written: Written
    start_rate: float


@dataclass(frozen=True)
class GoldResult:
    written: Written
    rows_out_of_bounds: int


def _require(spark: SparkSession, path: str, upstream: str) -> None:
    if not delta_io.is_delta(spark, path):
        raise StepInputMissing(f"no Delta table at {path}: run the '{upstream}' step first")


def _written_day(spark: SparkSession, path: str, column: str, day: date) -> Written:
    rows = spark.read.format("delta").load(path).where(F.col(column) == day).count()
    return Written(path, rows, delta_io.version(spark, path))


def ingest_bronze(
    spark: SparkSession,
    store: ObjectStoreOps,
    kafka: KafkaSettings,
    topic: str,
    watermarks: dict[int, tuple[int, int]],
    accept_lost_offsets: bool = False,
) -> BronzeResult:
    """Appends the Kafka offsets bronze does not hold yet, exactly once (spark_jobs/bronze); lost
    offsets raise OffsetsLost unless acknowledged."""
    path = store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    held = bronze.bronze_next_offsets(path, topic)
    topic_id = KafkaClient(kafka).topic_id(topic)
    kept_id = bronze.bronze_topic_id(path, topic)
    plan = bronze.plan_range(held, watermarks, topic, accept_lost_offsets, kept_id, topic_id)
    lost = {g.partition: (g.kept_next, g.low) for g in offset_gaps(held, watermarks)}
    if not plan:
        version = delta_io.version(spark, path) if delta_io.is_delta(spark, path) else None
        return BronzeResult(Written(path, 0, version), {}, [], lost, topic_id)
    rows = bronze.to_bronze(bronze.read_range(spark, kafka, topic, plan, topic_id)).cache()
    count = rows.count()
    dates = sorted(
        r["kafka_date"].isoformat() for r in rows.select("kafka_date").distinct().collect()
    )
    bronze.append_bronze(rows, path, topic, bronze.range_version(plan))
    rows.unpersist()
    written = Written(path, count, delta_io.version(spark, path))
    return BronzeResult(written, plan, dates, lost, topic_id)


def silver_day(spark: SparkSession, store: ObjectStoreOps, day: date) -> SilverResult:
    """Parses one event date from bronze: valid events deduplicated into silver, the rest into
    silver_quarantine with a reason; both replace the day in one commit each."""
    bronze_path = store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    _require(spark, bronze_path, "bronze")
    source = spark.read.format("delta").load(bronze_path)
    classified = silver.classify(silver.bronze_window(source, day)).cache()
    bad = silver.quarantined(classified, day)
    silver_path = store.table_uri(tables.SILVER_VIEWING_EVENTS)
    quarantine_path = store.table_uri(tables.SILVER_QUARANTINE)
    delta_io.replace_day(silver.valid_events(classified, day), silver_path, "event_date", day)
    delta_io.replace_day(bad, quarantine_path, "kafka_date", day)

    in_scope = classified.where(
        (F.col("reason").isNull() & (F.col("event_date") == F.lit(day)))
        | (F.col("reason").isNotNull() & (F.col("kafka_date") == F.lit(day)))
    ).count()
    duplicates = silver.duplicate_count(classified, day)
    reasons = {r["reason"]: r["count"] for r in bad.groupBy("reason").count().collect()}
    classified.unpersist()
    written = spark.read.format("delta").load(silver_path).where(F.col("event_date") == day)
    return SilverResult(
        events=_written_day(spark, silver_path, "event_date", day),
        quarantine=_written_day(spark, quarantine_path, "kafka_date", day),
        bronze_rows=in_scope,
        duplicates=duplicates,
        distinct_event_ids=written.select("event_id").distinct().count(),
        reasons=reasons,
    )


def sessions_day(spark: SparkSession, store: ObjectStoreOps, day: date) -> SessionsResult:
    """One row per playback attempt that began on `day`, replacing that day."""
    events_path = store.table_uri(tables.SILVER_VIEWING_EVENTS)
    _require(spark, events_path, "silver")
    events = spark.read.format("delta").load(events_path)
    path = store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)
    rows = sessions.sessionize(sessions.events_for_sessions(events, day), day)
    delta_io.replace_day(rows, path, "session_date", day)
    written = spark.read.format("delta").load(path).where(F.col("session_date") == day)
    stats = written.agg(
        F.count("*").alias("sessions"),
        F.avg(F.col("started").cast("int")).alias("start_rate"),
    ).first()
    return SessionsResult(
        Written(path, stats["sessions"], delta_io.version(spark, path)),
        float(stats["start_rate"] or 0.0),
    )


def _day_sessions(spark: SparkSession, store: ObjectStoreOps, day: date) -> DataFrame:
    """The day's silver_playback_sessions, cached for the gold builds that read them; the
    caller unpersists."""
    sessions_path = store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)
    _require(spark, sessions_path, "sessions")
    return (
        spark.read.format("delta").load(sessions_path).where(F.col("session_date") == day).cache()
    )


def gold_day(spark: SparkSession, store: ObjectStoreOps, day: date) -> dict[LakeTable, GoldResult]:
    """Replaces and compacts the day in every gold table from the day's sessions."""
    day_sessions = _day_sessions(spark, store, day)
    results = {}
    for table, build in gold.TABLES.items():
        path = store.table_uri(table)
        delta_io.replace_day(build(day_sessions), path, "session_date", day)
        delta_io.compact_day(spark, path, "session_date", day)
        written = spark.read.format("delta").load(path).where(F.col("session_date") == day)
        results[table] = GoldResult(
            _written_day(spark, path, "session_date", day), bound_violations(written)
        )
    day_sessions.unpersist()
    return results


@dataclass(frozen=True)
class TitleCountryResult:
    written: Written
    table_totals: dict[str, float]
    session_totals: dict[str, float]
    """Sessions, starts and watch hours of the day, summed over the table and over the
    sessions it was built from."""

    @property
    def reconciles(self) -> bool:
        """Every session of the day is counted once: the same sessions and starts, and the same
        watch hours up to float rounding."""
        t, s = self.table_totals, self.session_totals
        hours_close = abs(t["watch_hours"] - s["watch_hours"]) <= 1e-9 * max(1.0, s["watch_hours"])
        return t["sessions"] == s["sessions"] and t["starts"] == s["starts"] and hours_close


def title_country_day(spark: SparkSession, store: ObjectStoreOps, day: date) -> TitleCountryResult:
    """Replaces and compacts the day in gold_title_country_daily from the day's sessions, and
    sums both sides for the reconciliation check."""
    day_sessions = _day_sessions(spark, store, day)
    path = store.table_uri(tables.GOLD_TITLE_COUNTRY_DAILY)
    delta_io.replace_day(title_country.title_country_daily(day_sessions), path, "session_date", day)
    delta_io.compact_day(spark, path, "session_date", day)
    written = spark.read.format("delta").load(path).where(F.col("session_date") == day)
    totals = title_country.table_totals(written).asDict()
    source = title_country.session_totals(day_sessions).asDict()
    day_sessions.unpersist()
    return TitleCountryResult(_written_day(spark, path, "session_date", day), totals, source)


def bound_violations(table: DataFrame) -> int:
    """Rows where a rate leaves [0, 1], a count or duration is negative, or p50 > p95."""
    conditions = []
    for column in table.columns:
        if column in BOUNDED:
            conditions.append(~F.col(column).between(0, 1))
        elif column not in ("session_date",) and dict(table.dtypes)[column] in ("bigint", "double"):
            conditions.append(F.col(column) < 0)
    if "startup_p50_ms" in table.columns:
        conditions.append(F.col("startup_p50_ms") > F.col("startup_p95_ms"))
    bad = conditions[0]
    for condition in conditions[1:]:
        bad = bad | condition
    return table.where(F.coalesce(bad, F.lit(False))).count()
