"""The lake's steps as a command line: the same spark_jobs.steps the lake assets call, runnable
under spark-submit on a cluster or with `python -m` in-process.

    spark-submit --master spark://host:7077 --conf spark.jars=... spark_jobs/submit.py \\
        silver --lake-root /data/objects --date 2026-11-01
    python -m spark_jobs.submit silver --lake-root /data/objects --date 2026-11-01 --master local[2]

Under spark-submit the session is spark-submit's (master, jars and conf come from its flags);
with `python -m` it is built by spark_jobs/session.py, the Delta configuration the assets use.
Each run prints one JSON line: the job, the date, and per table written its rows and version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from datetime import date

from pyspark.sql import SparkSession

from netflix_assets import settings
from netflix_assets.clients.kafka import KafkaClient, KafkaSettings
from netflix_assets.clients.object_store import ObjectStore
from schema import tables
from spark_jobs import session, steps


def run_step(spark: SparkSession, store: ObjectStore, args: argparse.Namespace) -> dict:
    """Runs the step the arguments name and returns, per table written, its rows and version."""
    if args.job == "bronze":
        kafka = KafkaSettings.from_env(bootstrap_servers=args.bootstrap_servers)
        marks = KafkaClient(kafka).watermarks(args.topic)
        r = steps.ingest_bronze(spark, store, kafka, args.topic, marks)
        return {tables.BRONZE_VIEWING_EVENTS.name: r.written}
    if args.job == "silver":
        r = steps.silver_day(spark, store, args.date)
        return {
            tables.SILVER_VIEWING_EVENTS.name: r.events,
            tables.SILVER_QUARANTINE.name: r.quarantine,
        }
    if args.job == "sessions":
        return {
            tables.SILVER_PLAYBACK_SESSIONS.name: steps.sessions_day(
                spark, store, args.date
            ).written
        }
    written = {t.name: r.written for t, r in steps.gold_day(spark, store, args.date).items()}
    country = steps.title_country_day(spark, store, args.date)
    return {**written, tables.GOLD_TITLE_COUNTRY_DAILY.name: country.written}


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
        default=os.environ.get("NETFLIX_ASSETS_SPARK_MASTER", "local[*]"),
        help="Spark master URL for `python -m` runs (default: env NETFLIX_ASSETS_SPARK_MASTER, "
        "else local[*]); under spark-submit give spark-submit --master instead",
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


def spark_session(job: str, master: str) -> SparkSession:
    if under_spark_submit():
        return SparkSession.builder.getOrCreate()
    conf = session.session_conf(settings.jars("spark"))
    return session.get_session(master, f"netflix-assets-{job}", conf)


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if "--master" in (argv if argv is not None else sys.argv) and under_spark_submit():
        cli.error("--master is spark-submit's option here: pass it before the script path")
    store = ObjectStore(root=args.lake_root)
    day: date | None = getattr(args, "date", None)
    spark = spark_session(args.job, args.master)
    try:
        written = run_step(spark, store, args)
    except steps.StepInputMissing as exc:
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
