"""The lake jobs under spark-submit on a standalone cluster write what the in-process assets write.

A master and a worker run on loopback; silver, sessions and gold are submitted to them one after
another, reading a bronze table this test writes. The same bronze, copied to a second lake, goes
through the Dagster assets on the suite's in-process session, and every table must match.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from deltalake import DeltaTable
from pyspark.sql.types import (
    BinaryType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from assets.lake import (
    gold_tables,
    gold_title_country_daily,
    silver_events,
    silver_playback_sessions,
)
from netflix_assets.stack.process import wait_until
from netflix_assets.stack.spark_cluster import SparkCluster, free_ports, spark_env, submit_command
from resources.object_store import ObjectStoreResource
from resources.spark import SparkResource
from schema import tables
from schema.tables import LakeTable
from spark_jobs import bronze, gold, steps, submit
from streaming.simulator import SimConfig, Simulator

DAY = date(2026, 11, 1)
CONFIG = SimConfig(users=40, titles=15, start=DAY, malformed_share=0.01, duplicate_share=0.01)
TOPIC = "viewing-events-cluster-test"
JOBS = ("silver", "sessions", "gold")
DAILY_TABLES = (
    tables.SILVER_VIEWING_EVENTS,
    tables.SILVER_QUARANTINE,
    tables.SILVER_PLAYBACK_SESSIONS,
    *gold.TABLES,
    tables.GOLD_TITLE_COUNTRY_DAILY,
)
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""Seconds-long JVMs on two cores finish sooner on the quick compiler alone (about a third off)."""
KAFKA_ROWS = StructType(
    [
        StructField("key", BinaryType()),
        StructField("value", BinaryType()),
        StructField("topic", StringType()),
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("timestamp", TimestampType()),
    ]
)


def write_bronze(spark, store: ObjectStoreResource) -> int:
    """Simulated messages shaped like the Kafka source's rows, through the bronze functions."""
    rows, next_offset = [], [0, 0]
    for message in Simulator(CONFIG).messages():
        partition = zlib.crc32(message.key) % 2
        ts = datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)
        rows.append((message.key, message.value, TOPIC, partition, next_offset[partition], ts))
        next_offset[partition] += 1
    raw = spark.createDataFrame(rows, KAFKA_ROWS)
    path = store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    bronze.append_bronze(bronze.to_bronze(raw), path, TOPIC, sum(next_offset))
    return len(rows)


def row_set(store: ObjectStoreResource, name: LakeTable) -> Counter:
    """The table's rows as a multiset; doubles rounded, since a sum's last bits depend on the
    order partial aggregates are merged in, which differs between the two runs."""

    def cell(value: object) -> object:
        return round(value, 9) if isinstance(value, float) and math.isfinite(value) else value

    table = DeltaTable(store.table_uri(name)).to_pyarrow_table()
    return Counter(tuple(sorted((k, cell(v)) for k, v in r.items())) for r in table.to_pylist())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with SparkCluster(tmp_path_factory.mktemp("spark-cluster"), free_ports()) as running:
        yield running


def submit_jobs(cluster: SparkCluster, store: ObjectStoreResource) -> dict[str, dict]:
    """spark-submit each daily job to the cluster in order; the JSON line each one printed."""
    conf = SparkResource(
        shuffle_partitions=2,
        driver_memory="1g",
        extra_conf={
            "spark.executor.memory": cluster.memory,
            "spark.driver.extraJavaOptions": QUICK_JVM,
            "spark.executor.extraJavaOptions": QUICK_JVM,
        },
    ).session_conf()
    env = {**os.environ, **spark_env(cluster.state)}
    summaries = {}
    for job in JOBS:
        args = [job, "--lake-root", store.root, "--date", DAY.isoformat()]
        cmd = submit_command(cluster.master_url, Path(submit.__file__), args, conf, f"lake-{job}")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"spark-submit {job} failed:\n{done.stderr[-3000:]}"
        summaries[job] = json.loads(done.stdout.strip().splitlines()[-1])
    return summaries


@pytest.fixture(scope="module")
def lakes(spark, spark_resource, cluster, tmp_path_factory):
    """One bronze in two lakes: one filled by spark-submit on the cluster, one by the assets on
    the in-process session. The two run side by side: each alone leaves a core idle."""
    on_cluster = ObjectStoreResource(root=str(tmp_path_factory.mktemp("lake-cluster")))
    in_process = ObjectStoreResource(root=str(tmp_path_factory.mktemp("lake-in-process")))
    produced = write_bronze(spark, on_cluster)
    shutil.copytree(
        on_cluster.table_uri(tables.BRONZE_VIEWING_EVENTS),
        in_process.table_uri(tables.BRONZE_VIEWING_EVENTS),
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        submitted = pool.submit(submit_jobs, cluster, on_cluster)
        chain = materialize(
            [silver_events, silver_playback_sessions, gold_tables, gold_title_country_daily],
            partition_key=DAY.isoformat(),
            resources={"spark": spark_resource, "object_store": in_process},
            instance=DagsterInstance.ephemeral(),
        )
        summaries = submitted.result()
    assert chain.success
    return {
        "cluster": on_cluster,
        "in_process": in_process,
        "summaries": summaries,
        "produced": produced,
    }


def test_cluster_tables_equal_in_process_tables(lakes) -> None:
    for name in DAILY_TABLES:
        on_cluster = row_set(lakes["cluster"], name)
        assert on_cluster, f"{name} is empty"
        assert on_cluster == row_set(lakes["in_process"], name), f"{name} differs"


def test_each_job_prints_what_it_wrote(lakes) -> None:
    printed = {}
    for job, summary in lakes["summaries"].items():
        assert (summary["job"], summary["date"]) == (job, DAY.isoformat())
        printed.update(summary["tables"])
    assert set(printed) == {t.name for t in DAILY_TABLES}
    for name, written in printed.items():
        table = DeltaTable(written["uri"])
        assert written["uri"] == lakes["cluster"].table_uri(tables.by_name(name))
        assert written["rows"] == table.to_pyarrow_table().num_rows > 0
        assert written["delta_version"] == table.version()
    assert printed["silver_viewing_events"]["rows"] < lakes["produced"]


def test_jobs_ran_as_applications_of_the_cluster(lakes, cluster) -> None:
    names = {f"lake-{job}" for job in JOBS}

    def finished() -> list[dict]:
        apps = (cluster.status() or {}).get("completedapps", [])
        return [a for a in apps if a["name"] in names and a["state"] == "FINISHED"]

    assert wait_until(lambda: len(finished()) == len(JOBS), 15), cluster.status()
    for app in finished():
        executors = list((cluster.work_dir / app["id"]).iterdir())
        assert executors, f"{app['name']} ran no executor on the worker"


def test_bad_arguments_exit_with_usage() -> None:
    with pytest.raises(SystemExit) as exit_info:
        submit.main(["silver", "--lake-root", "/tmp/lake", "--date", "2026-13-01"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        submit.main(["bronze", "--lake-root", "/tmp/lake"])


def test_step_without_its_input_names_the_step_to_run_first(spark, tmp_path) -> None:
    store = ObjectStoreResource(root=str(tmp_path))
    with pytest.raises(steps.StepInputMissing, match="run the 'silver' step first"):
        steps.sessions_day(spark, store, DAY)
