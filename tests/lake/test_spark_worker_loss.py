"""A lake job survives losing a Spark worker mid-job, and writes what an undisturbed run writes.

A master and two workers (one core each) run on loopback and the silver job is submitted to them.
While it runs, after some of its Spark jobs have finished and with both workers' executors
holding its cached classified events and shuffle output, one worker's JVM is killed with
SIGKILL. Spark must notice the lost executor, recompute what it held on the surviving
worker, and finish. Every table must equal the same jobs' undisturbed run on the suite's
in-process session (the cluster and in-process paths are shown equal by test_spark_cluster).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_spark_cluster import DAY, QUICK_JVM, row_set, write_bronze

from netflix_assets.settings import HOST
from netflix_assets.stack.process import wait_until
from netflix_assets.stack.spark_cluster import SparkCluster, free_ports, spark_env, submit_command
from resources.object_store import ObjectStoreResource
from resources.spark import SparkResource
from schema import tables
from spark_jobs import steps, submit

pytestmark = pytest.mark.slow

KILL_AFTER_JOBS = 2
"""Spark jobs of the silver application that must have finished before the kill."""
SILVER_TABLES = (tables.SILVER_VIEWING_EVENTS, tables.SILVER_QUARANTINE)
SUBMIT_TIMEOUT_S = 1200
"""A minute on a quiet host; on a shared 2-core host under load 30 it took over 5 minutes."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _get(url: str) -> list | dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


class DriverApi:
    """The REST API of one application's driver UI (jobs, executors)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://{HOST}:{port}/api/v1/applications"

    def app_id(self) -> str | None:
        apps = _get(self.base)
        return apps[0]["id"] if apps else None

    def get(self, what: str) -> list:
        app = self.app_id()
        return (_get(f"{self.base}/{app}/{what}") or []) if app else []


def kill_when_both_workers_hold_work(
    cluster: SparkCluster, driver: DriverApi, done: threading.Event, record: dict
) -> None:
    """Wait until the application has finished KILL_AFTER_JOBS Spark jobs and each of the two
    executors has run tasks, then SIGKILL the worker of the executor that ran the most."""
    while not done.is_set():
        jobs = driver.get("jobs")
        executors = [e for e in driver.get("executors") if e["id"] != "driver"]
        succeeded = sum(j["status"] == "SUCCEEDED" for j in jobs)
        busy = [e for e in executors if e["totalTasks"] > 0]
        if succeeded >= KILL_AFTER_JOBS and len(busy) == 2:
            victim = max(busy, key=lambda e: e["totalTasks"])
            record["jobs_done_before_kill"] = succeeded
            record["jobs_running_at_kill"] = sum(j["status"] == "RUNNING" for j in jobs)
            record["victim_executor"] = victim["id"]
            record["victim_tasks"] = victim["totalTasks"]
            index = worker_of_executor(cluster, driver.app_id() or "", victim["id"])
            record["victim_worker"] = index
            cluster.kill_worker(index)
            record["killed_at"] = time.monotonic()
            return
        time.sleep(0.2)


def worker_of_executor(cluster: SparkCluster, app_id: str, executor_id: str) -> int:
    """Which of our workers launched the executor: each worker's log names the executors it
    was asked to launch as <app id>/<executor id>."""
    launched = f"Asked to launch executor {app_id}/{executor_id} for"
    for index in range(len(cluster.ports.workers)):
        if launched in cluster.worker_log(index).read_text(errors="replace"):
            return index
    raise AssertionError(f"no worker log has {launched!r}")


def spark_submit(
    cluster: SparkCluster, store: ObjectStoreResource, job: str, ui_port: int
) -> subprocess.Popen:
    conf = SparkResource(
        shuffle_partitions=4,
        driver_memory="1g",
        extra_conf={
            "spark.executor.memory": cluster.memory,
            "spark.executor.cores": "1",
            "spark.driver.extraJavaOptions": QUICK_JVM,
            "spark.executor.extraJavaOptions": QUICK_JVM,
            "spark.ui.enabled": "true",
            "spark.ui.port": str(ui_port),
            "spark.ui.showConsoleProgress": "false",
        },
    ).session_conf()
    args = [job, "--lake-root", store.root, "--date", DAY.isoformat()]
    cmd = submit_command(cluster.master_url, Path(submit.__file__), args, conf, f"loss-{job}")
    return subprocess.Popen(
        cmd,
        env={**os.environ, **spark_env(cluster.state)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_on_cluster(cluster: SparkCluster, store: ObjectStoreResource) -> dict:
    """The silver job, with a worker killed mid-job."""
    record: dict = {}
    port = _free_port()
    process = spark_submit(cluster, store, "silver", port)
    done = threading.Event()

    def kill() -> None:
        try:
            kill_when_both_workers_hold_work(cluster, DriverApi(port), done, record)
        except Exception as exc:  # reported by the test, not lost with the thread
            record["killer_error"] = repr(exc)

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        stdout, stderr = process.communicate(timeout=SUBMIT_TIMEOUT_S)
    finally:
        done.set()
        killer.join()
    assert process.returncode == 0, f"spark-submit silver failed:\n{stderr[-4000:]}"
    record["summary"] = json.loads(stdout.strip().splitlines()[-1])
    record["log"] = stderr
    return record


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    on_cluster = ObjectStoreResource(root=str(tmp_path_factory.mktemp("lake-worker-loss")))
    reference = ObjectStoreResource(root=str(tmp_path_factory.mktemp("lake-undisturbed")))
    # The simulator is seeded: both lakes get the same bronze.
    assert write_bronze(spark, on_cluster) == write_bronze(spark, reference)
    # Four JVMs start at once: on a shared 2-core host registering can take minutes.
    cluster = SparkCluster(tmp_path_factory.mktemp("spark-two-workers"), free_ports(workers=2))
    cluster.start(timeout_s=300)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            submitted = pool.submit(run_on_cluster, cluster, on_cluster)
            steps.silver_day(spark, reference, DAY)
            record = submitted.result()
        alive_after = wait_until(lambda: len(cluster.alive_workers()) == 1, 60)
        record["alive_workers_after"] = len(cluster.alive_workers())
        assert alive_after, cluster.status()
    finally:
        cluster.stop()
    return {"cluster": on_cluster, "reference": reference, "record": record}


def test_a_worker_was_killed_while_silver_ran(runs) -> None:
    record = runs["record"]
    assert "killer_error" not in record, record["killer_error"]
    assert "killed_at" in record, "silver finished before both workers held its work"
    assert record["jobs_done_before_kill"] >= KILL_AFTER_JOBS
    assert record["victim_tasks"] > 0
    assert record["alive_workers_after"] == 1
    # The driver saw the executor go and ran its work again elsewhere.
    log = record["log"]
    assert f"Lost executor {record['victim_executor']}" in log or "Executor lost" in log, log[
        -3000:
    ]


def test_tables_equal_an_undisturbed_run(runs) -> None:
    assert set(runs["record"]["summary"]["tables"]) == {t.name for t in SILVER_TABLES}
    for name in SILVER_TABLES:
        disturbed = row_set(runs["cluster"], name)
        assert disturbed, f"{name} is empty"
        assert disturbed == row_set(runs["reference"], name), f"{name} differs"
