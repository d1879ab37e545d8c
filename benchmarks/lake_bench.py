"""Lake throughput: simulated events through Kafka -> bronze -> silver -> sessions -> gold.

Prints the simulator's produce rate, Spark's events/s for each stage and end to end, and the same
sessions + gold computation in DuckDB over the same silver table as the single-node baseline
(Spark/DuckDB time ratio). Sizes: --events 1000000 (default) and e.g. --events 10000000.
Needs the local stack (`netflix-assets stack up`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date

import duckdb
from deltalake import DeltaTable

from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.spark import SparkResource
from schema import tables
from spark_jobs import bronze, delta_io, gold, sessions, silver
from streaming.produce import produce_simulated
from streaming.simulator import SimConfig

EVENTS_PER_USER_DAY = 146  # measured from the simulator's defaults
DAY = date(2026, 10, 1)

DUCKDB_GOLD = """
CREATE TABLE s AS
SELECT session_id, min(event_ts) AS session_start, any_value(title_id) AS title_id,
       any_value(profile_id) AS profile_id, any_value(user_id) AS user_id,
       any_value(device) AS device, any_value(country) AS country, any_value(cdn) AS cdn,
       max(startup_ms) FILTER (event_type = 'start') AS startup_ms,
       count(*) FILTER (event_type = 'start') > 0 AS started,
       count(*) FILTER (event_type = 'error') > 0 AS failed,
       coalesce(max(position_ms) FILTER (event_type <> 'playback_request'), 0) AS watched_ms,
       count(*) FILTER (event_type = 'stall_end') AS stall_count,
       coalesce(sum(stall_ms) FILTER (event_type = 'stall_end'), 0) AS stall_ms,
       avg(bitrate_kbps) FILTER (event_type = 'heartbeat') AS avg_bitrate_kbps
FROM silver GROUP BY session_id;
CREATE TABLE title_daily AS SELECT title_id, count(*) FILTER (started) AS views,
       count(DISTINCT profile_id) FILTER (started) AS viewers, sum(watched_ms) / 3.6e6 AS hours
FROM s GROUP BY title_id;
CREATE TABLE qoe_daily AS SELECT device, country, cdn, count(*) AS attempts,
       quantile_cont(startup_ms, 0.5) AS p50, quantile_cont(startup_ms, 0.95) AS p95,
       sum(stall_ms) / greatest(sum(watched_ms) + sum(stall_ms), 1) AS stall_ratio,
       avg(failed::int) AS failure_rate
FROM s GROUP BY device, country, cdn;
CREATE TABLE user_daily AS SELECT user_id, count(*) AS sessions, sum(watched_ms) / 3.6e6 AS hours
FROM s GROUP BY user_id;
"""


def timed(label: str, results: dict[str, float], action) -> object:
    started = time.perf_counter()
    value = action()
    results[label] = time.perf_counter() - started
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    users = max(10, args.events // EVENTS_PER_USER_DAY)
    kafka = KafkaResource()
    topic = f"bench-lake-{int(time.time())}"
    kafka.ensure_topics([topic], partitions=4)
    store = ObjectStoreResource(root=tempfile.mkdtemp(prefix="lake-bench-"))
    report = produce_simulated(
        kafka, SimConfig(users=users, titles=max(50, users // 20), start=DAY), topic=topic
    )
    print(f"events produced                 {report.produced:>12,}")
    print(f"simulator produce rate          {report.rate:>12,.0f} events/s (target 100,000)")

    spark = SparkResource(shuffle_partitions=4, driver_memory="6g").get_session()
    t: dict[str, float] = {}
    bronze_path = store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    plan = bronze.plan_range({}, kafka.watermarks(topic))
    raw = bronze.read_range(spark, kafka.bootstrap_servers, topic, plan)
    timed(
        "bronze",
        t,
        lambda: bronze.append_bronze(
            bronze.to_bronze(raw), bronze_path, topic, bronze.range_version(plan)
        ),
    )
    bronze_df = spark.read.format("delta").load(bronze_path)
    silver_path = store.table_uri(tables.SILVER_VIEWING_EVENTS)

    def build_silver() -> None:
        classified = silver.classify(silver.bronze_window(bronze_df, DAY))
        delta_io.replace_day(silver.valid_events(classified, DAY), silver_path, "event_date", DAY)

    timed("silver", t, build_silver)
    silver_df = spark.read.format("delta").load(silver_path)
    sessions_path = store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)
    timed(
        "sessions",
        t,
        lambda: delta_io.replace_day(
            sessions.sessionize(sessions.events_for_sessions(silver_df, DAY), DAY),
            sessions_path,
            "session_date",
            DAY,
        ),
    )

    def build_gold() -> None:
        day_sessions = spark.read.format("delta").load(sessions_path).cache()
        for table, build in gold.TABLES.items():
            delta_io.replace_day(build(day_sessions), store.table_uri(table), "session_date", DAY)
        day_sessions.unpersist()

    timed("gold", t, build_gold)
    total = sum(t.values())
    for stage, seconds in t.items():
        print(
            f"spark {stage:9s}                 {seconds:>8.1f} s  "
            f"{report.produced / seconds:>10,.0f} events/s"
        )
    print(
        f"spark bronze->gold total        {total:>8.1f} s  "
        f"{report.produced / total:>10,.0f} events/s"
    )

    silver_arrow = DeltaTable(silver_path).to_pyarrow_dataset()
    connection = duckdb.connect()
    connection.register("silver", silver_arrow)
    started = time.perf_counter()
    connection.execute(DUCKDB_GOLD)
    duck = time.perf_counter() - started
    spark_same = t["sessions"] + t["gold"]
    print(f"duckdb sessions+gold (baseline) {duck:>8.1f} s")
    print(
        f"spark sessions+gold             {spark_same:>8.1f} s  ratio spark/duckdb "
        f"{spark_same / duck:.1f}x"
    )


if __name__ == "__main__":
    main()
