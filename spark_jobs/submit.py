"""The lake's jobs as a command line: the same spark_jobs calls the lake assets make, runnable
under spark-submit on a cluster or with `python -m` in-process.

    spark-submit --master spark://host:7077 --conf spark.jars=... spark_jobs/submit.py \\
        silver --lake-root /data/objects --date 2026-11-01
    python -m spark_jobs.submit silver --lake-root /data/objects --date 2026-11-01 --master local[2]

Under spark-submit the session is spark-submit's (master, jars and conf come from its flags);
with `python -m` it is built by SparkResource, so the Delta configuration has one definition.
Each run prints one JSON line: the job, the date, and per table written its rows and version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.spark import SparkResource
from spark_jobs import bronze, delta_io, gold, sessions, silver
from spark_jobs.paths import table_uri


class JobInputMissing(RuntimeError):
    """The table a job reads has not been written yet."""


@dataclass(frozen=True)
class Written:
    """What a job left in one table: for a daily job the rows of its date."""

    uri: str
    rows: int
    delta_version: int | None


def _require(spark: SparkSession, path: str, upstream_job: str) -> None:
    if not delta_io.is_delta(spark, path):
        raise JobInputMissing(f"no Delta table at {path}: run the '{upstream_job}' job first")


def _written_day(spark: SparkSession, path: str, column: str, day: date) -> Written:
    rows = spark.read.format("delta").load(path).where(F.col(column) == day).count()
    return Written(path, rows, delta_io.version(spark, path))


def run_bronze(
    spark: SparkSession, store: ObjectStoreResource, bootstrap_servers: str, topic: str
) -> dict[str, Written]:
    """Appends the Kafka offsets bronze does not hold yet (see spark_jobs/bronze)."""
    path = table_uri(store, "bronze_viewing_events")
    watermarks = KafkaResource(bootstrap_servers=bootstrap_servers).watermarks(topic)
    plan = bronze.plan_range(bronze.bronze_next_offsets(path, topic), watermarks)
    if not plan:
        version = delta_io.version(spark, path) if delta_io.is_delta(spark, path) else None
        return {"bronze_viewing_events": Written(path, 0, version)}
    rows = bronze.to_bronze(bronze.read_range(spark, bootstrap_servers, topic, plan)).cache()
    count = rows.count()
    bronze.append_bronze(rows, path, topic, bronze.range_version(plan))
    rows.unpersist()
    return {"bronze_viewing_events": Written(path, count, delta_io.version(spark, path))}


def run_silver(spark: SparkSession, store: ObjectStoreResource, day: date) -> dict[str, Written]:
    """Replaces the day in silver_viewing_events and silver_quarantine from bronze."""
    bronze_path = table_uri(store, "bronze_viewing_events")
    _require(spark, bronze_path, "bronze")
    source = spark.read.format("delta").load(bronze_path)
    classified = silver.classify(silver.bronze_window(source, day)).cache()
    silver_path = table_uri(store, "silver_viewing_events")
    quarantine_path = table_uri(store, "silver_quarantine")
    delta_io.replace_day(silver.valid_events(classified, day), silver_path, "event_date", day)
    delta_io.replace_day(silver.quarantined(classified, day), quarantine_path, "kafka_date", day)
    classified.unpersist()
    return {
        "silver_viewing_events": _written_day(spark, silver_path, "event_date", day),
        "silver_quarantine": _written_day(spark, quarantine_path, "kafka_date", day),
    }


def run_sessions(spark: SparkSession, store: ObjectStoreResource, day: date) -> dict[str, Written]:
    """Replaces the day in silver_playback_sessions from silver events."""
    events_path = table_uri(store, "silver_viewing_events")
    _require(spark, events_path, "silver")
    events = spark.read.format("delta").load(events_path)
    path = table_uri(store, "silver_playback_sessions")
    rows = sessions.sessionize(sessions.events_for_sessions(events, day), day)
    delta_io.replace_day(rows, path, "session_date", day)
    return {"silver_playback_sessions": _written_day(spark, path, "session_date", day)}


def run_gold(spark: SparkSession, store: ObjectStoreResource, day: date) -> dict[str, Written]:
    """Replaces and compacts the day in every gold table from the day's sessions."""
    sessions_path = table_uri(store, "silver_playback_sessions")
    _require(spark, sessions_path, "sessions")
    day_sessions = (
        spark.read.format("delta").load(sessions_path).where(F.col("session_date") == day).cache()
    )
    written = {}
    for name, build in gold.TABLES.items():
        path = table_uri(store, name)
        delta_io.replace_day(build(day_sessions), path, "session_date", day)
        delta_io.compact_day(spark, path, "session_date", day)
        written[name] = _written_day(spark, path, "session_date", day)
    day_sessions.unpersist()
    return written


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from exc


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lake-root", required=True, help="object store root: a folder or s3://bucket/prefix"
    )
    common.add_argument(
        "--master",
        help="Spark master URL for `python -m` runs (default: SparkResource's, env "
        "NETFLIX_ASSETS_SPARK_MASTER); under spark-submit give spark-submit --master instead",
    )
    daily = argparse.ArgumentParser(add_help=False, parents=[common])
    daily.add_argument("--date", required=True, type=_iso_date, help="event date, YYYY-MM-DD")

    cli = argparse.ArgumentParser(
        prog="spark_jobs.submit", description="Run one lake job on Spark."
    )
    jobs = cli.add_subparsers(dest="job", required=True, metavar="JOB")
    ingest = jobs.add_parser("bronze", parents=[common], help="Kafka offsets -> bronze")
    ingest.add_argument("--bootstrap-servers", required=True, help="Kafka host:port list")
    ingest.add_argument("--topic", required=True, help="Kafka topic of viewing events")
    jobs.add_parser("silver", parents=[daily], help="bronze -> silver events + quarantine")
    jobs.add_parser("sessions", parents=[daily], help="silver events -> playback sessions")
    jobs.add_parser("gold", parents=[daily], help="playback sessions -> gold daily tables")
    return cli


def under_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands Python its gateway through this variable."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session(job: str, master: str | None) -> SparkSession:
    if under_spark_submit():
        return SparkSession.builder.getOrCreate()
    options = {"app_name": f"netflix-assets-{job}"}
    if master:
        options["master"] = master
    return SparkResource(**options).get_session()


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if args.master and under_spark_submit():
        cli.error("--master is spark-submit's option here: pass it before the script path")
    store = ObjectStoreResource(root=args.lake_root)
    day: date | None = getattr(args, "date", None)
    spark = session(args.job, args.master)
    try:
        if args.job == "bronze":
            written = run_bronze(spark, store, args.bootstrap_servers, args.topic)
        else:
            run = {"silver": run_silver, "sessions": run_sessions, "gold": run_gold}[args.job]
            written = run(spark, store, day)
    except JobInputMissing as exc:
        print(f"{args.job}: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    summary = {
        "job": args.job,
        "date": day.isoformat() if day else None,
        "tables": {name: asdict(w) for name, w in written.items()},
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
