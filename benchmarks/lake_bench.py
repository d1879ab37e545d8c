"""Lake throughput per stage: simulated events, Kafka -> bronze -> silver -> sessions -> gold.

Each run produces a fresh simulated day to a new topic of the local broker and runs the lake's own
steps on it (spark_jobs/steps.py, what the assets and spark-submit run), timing every stage in
wall seconds and in CPU seconds: this process's (the simulator and librdkafka's threads) plus the
Spark JVM's (the lake has no Python UDFs, so a Spark stage runs in the JVM). Events per CPU
second is the per-core figure of docs/SCALE.md's capacity model; on a shared host it moves less
than wall time, which also counts the time spent waiting for a core. The baseline, measured in
the same run: the same sessions + gold in DuckDB over the run's silver table (Spark/DuckDB wall
ratio). The load average is printed with each run; the summary gives the median and the worst.

    .venv/bin/python benchmarks/lake_bench.py --events 1000000 --runs 3

Needs the local stack (`netflix-assets stack up`); topics and lake folders are removed after
each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from deltalake import DeltaTable

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from proc_stats import process_cpu_s  # noqa: E402

from resources.kafka import KafkaResource  # noqa: E402
from resources.object_store import ObjectStoreResource  # noqa: E402
from resources.spark import SparkResource  # noqa: E402
from schema import tables  # noqa: E402
from spark_jobs import steps  # noqa: E402
from streaming.produce import produce_simulated  # noqa: E402
from streaming.simulator import SimConfig  # noqa: E402

EVENTS_PER_USER_DAY = 146  # measured from the simulator's defaults
DAY = date(2026, 10, 1)
STAGES = ("producer", "bronze", "silver", "sessions", "gold")

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


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float


class CpuClock:
    """CPU seconds of this process and of the Spark JVM."""

    def __init__(self, jvm_pid: int) -> None:
        self.jvm_pid = jvm_pid

    def seconds(self) -> float:
        own = os.times()
        return process_cpu_s(self.jvm_pid) + own.user + own.system

    def measure(self, action: Callable[[], Any]) -> tuple[Any, Timing]:
        wall, cpu = time.perf_counter(), self.seconds()
        value = action()
        return value, Timing(time.perf_counter() - wall, self.seconds() - cpu)


def run_once(spark, clock: CpuClock, kafka: KafkaResource, events: int) -> dict[str, Any]:
    """One simulated day through every stage; the figures of each, and the DuckDB baseline."""
    users = max(10, events // EVENTS_PER_USER_DAY)
    config = SimConfig(users=users, titles=max(50, users // 20), start=DAY)
    topic = f"bench-lake-{uuid.uuid4().hex[:8]}"
    kafka.ensure_topics([topic], partitions=4)
    root = tempfile.mkdtemp(prefix="lake-bench-")
    store = ObjectStoreResource(root=root)
    load_before = os.getloadavg()
    t: dict[str, Timing] = {}
    try:
        report, t["producer"] = clock.measure(
            lambda: produce_simulated(kafka.client(), config, topic=topic)
        )
        _, t["bronze"] = clock.measure(
            lambda: steps.ingest_bronze(
                spark, store, kafka.kafka_settings(), topic, kafka.watermarks(topic)
            )
        )
        _, t["silver"] = clock.measure(lambda: steps.silver_day(spark, store, DAY))
        _, t["sessions"] = clock.measure(lambda: steps.sessions_day(spark, store, DAY))
        _, t["gold"] = clock.measure(lambda: steps.gold_day(spark, store, DAY))

        silver = DeltaTable(store.table_uri(tables.SILVER_VIEWING_EVENTS)).to_pyarrow_dataset()
        connection = duckdb.connect()
        connection.register("silver", silver)
        started = time.perf_counter()
        connection.execute(DUCKDB_GOLD)
        duck_s = time.perf_counter() - started
        connection.close()
    finally:
        admin = kafka.admin()  # held until the deletion is done: a dropped handle cancels it
        for future in admin.delete_topics([topic]).values():
            future.result(30)
        shutil.rmtree(root, ignore_errors=True)
    return {
        "events": report.produced,
        "timings": t,
        "duckdb_s": duck_s,
        "load": (load_before, os.getloadavg()),
    }


def rates(run: dict[str, Any], stage: str) -> tuple[float, float]:
    """(events per wall second, events per CPU second) of one stage of one run."""
    timing = run["timings"][stage]
    return run["events"] / timing.wall_s, run["events"] / timing.cpu_s


def print_run(index: int, run: dict[str, Any]) -> None:
    before, after = run["load"]
    print(
        f"run {index}: {run['events']:,} events; load average {before[0]:.2f} {before[1]:.2f} "
        f"{before[2]:.2f} before, {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} after"
    )
    for stage in STAGES:
        timing = run["timings"][stage]
        wall, per_cpu = rates(run, stage)
        print(
            f"  {stage:9s} {timing.wall_s:7.1f} s wall {wall:>10,.0f} events/s   "
            f"{timing.cpu_s:7.1f} CPU s {per_cpu:>10,.0f} events per CPU second"
        )
    spark_same = run["timings"]["sessions"].wall_s + run["timings"]["gold"].wall_s
    print(
        f"  duckdb sessions+gold (baseline) {run['duckdb_s']:.1f} s; spark {spark_same:.1f} s: "
        f"ratio spark/duckdb {spark_same / run['duckdb_s']:.1f}x"
    )


def print_summary(runs: list[dict[str, Any]]) -> None:
    """Median and worst (the lowest rate; the highest Spark/DuckDB ratio) over the runs."""
    print(f"summary over {len(runs)} runs: median (worst)")
    for stage in STAGES:
        walls, per_cpus = zip(*(rates(run, stage) for run in runs), strict=True)
        print(
            f"  {stage:9s} {statistics.median(walls):>10,.0f} ({min(walls):>9,.0f}) events/s wall"
            f"   {statistics.median(per_cpus):>10,.0f} ({min(per_cpus):>9,.0f}) events per CPU s"
        )
    total_cpu = [sum(run["timings"][s].cpu_s for s in STAGES[1:]) for run in runs]
    per_core = [run["events"] / cpu for run, cpu in zip(runs, total_cpu, strict=True)]
    print(
        f"  bronze->gold {statistics.median(per_core):>10,.0f} ({min(per_core):>9,.0f}) "
        "events per CPU s, all four Spark stages together"
    )
    ratios = [
        (run["timings"]["sessions"].wall_s + run["timings"]["gold"].wall_s) / run["duckdb_s"]
        for run in runs
    ]
    print(f"  spark/duckdb sessions+gold {statistics.median(ratios):.1f}x ({max(ratios):.1f}x)")


def size_arguments(description: str, events: int) -> argparse.Namespace:
    """--events (about how many simulated events a run makes) and --runs, checked."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.events < 10 * EVENTS_PER_USER_DAY or args.runs < 1:
        parser.error(f"--events must be at least {10 * EVENTS_PER_USER_DAY} and --runs at least 1")
    return args


def main() -> None:
    args = size_arguments(__doc__.splitlines()[0], 1_000_000)
    kafka = KafkaResource()
    spark = SparkResource(shuffle_partitions=4, driver_memory="6g").get_session()
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    clock = CpuClock(jvm_pid)
    print(f"{os.cpu_count()} cores; Spark {spark.sparkContext.master}, JVM pid {jvm_pid}")
    runs = []
    for index in range(1, args.runs + 1):
        runs.append(run_once(spark, clock, kafka, args.events))
        print_run(index, runs[-1])
    print_summary(runs)
    spark.stop()


if __name__ == "__main__":
    main()
