"""A standalone Spark cluster on loopback: one master and one or more workers, from the pyspark
wheel.

The lake's jobs run in-process through the Spark resource and, unchanged, under `spark-submit`
against a cluster. This starts a small real cluster to prove the second path (and, with two
workers, that a job survives losing one): pyspark's own `bin/spark-class` runs the Master and
Worker daemons, so Java and the wheel are all it needs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark

from netflix_assets.settings import HOST
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.process import log_tail, stop_daemons, wait_until

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The pyspark package folder: it carries bin/, jars/ and the launcher like a Spark install."""
    return Path(pyspark.__file__).resolve().parent


def spark_env(state: Path) -> dict[str, str]:
    """Environment for the daemons and for spark-submit: loopback only, this Python for drivers
    and executors, and a private conf dir so a spark-defaults.conf on the machine stays out."""
    conf_dir = state / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    return {
        "SPARK_HOME": str(spark_home()),
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOCAL_DIRS": str(state / "local"),
        "SPARK_DAEMON_MEMORY": "256m",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def submit_command(
    master_url: str, app: Path, app_args: list[str], conf: dict[str, str], name: str
) -> list[str]:
    """A spark-submit command line; `conf` is the session's config (jars included), passed as
    --conf so the driver JVM starts with the jars on its classpath."""
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master_url, "--name", name]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(app), *app_args]


@dataclass(frozen=True)
class ClusterPorts:
    master: int
    master_ui: int
    workers: tuple[tuple[int, int], ...]
    """Per worker: its RPC port and its web UI port."""


class SparkCluster:
    """One master and `len(ports.workers)` workers under `state` (logs, work dir, scratch). Use
    as a context manager, or call start() and stop()."""

    def __init__(
        self, state: Path, ports: ClusterPorts, cores: int = 1, memory: str = "1g"
    ) -> None:
        if not ports.workers:
            raise ValueError("a Spark cluster needs at least one worker port pair")
        self.state = state
        self.ports = ports
        self.cores = cores
        self.memory = memory
        self._daemons: dict[str, subprocess.Popen] = {}

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.ports.master}"

    @property
    def work_dir(self) -> Path:
        """Where the workers run executors: one folder per application and executor."""
        return self.state / "work"

    @property
    def master_log(self) -> Path:
        return self.state / "master.log"

    def worker_log(self, index: int = 0) -> Path:
        return self.state / ("worker.log" if index == 0 else f"worker-{index}.log")

    def _logs(self) -> dict[str, Path]:
        logs = {"master": self.master_log}
        logs.update({f"worker-{i}": self.worker_log(i) for i in range(len(self.ports.workers))})
        return logs

    def _spawn(self, name: str, main: str, *args: str) -> None:
        """spark-class execs java, so the child process is the daemon itself. It stays in the
        caller's process group: a Ctrl-C that ends the caller ends the cluster too."""
        with open(self._logs()[name], "ab") as out:
            self._daemons[name] = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), main, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **spark_env(self.state)},
                cwd=self.state,
            )

    def status(self) -> dict[str, Any] | None:
        """The master's JSON status (workers, active and completed apps); None until it serves."""
        url = f"http://{HOST}:{self.ports.master_ui}/json/"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def alive_workers(self) -> list[dict[str, Any]]:
        """The workers the master lists as ALIVE (each with its host, port, cores in use)."""
        status = self.status() or {}
        return [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]

    def worker_pid(self, index: int) -> int | None:
        """The JVM of worker `index`, while this object runs it."""
        daemon = self._daemons.get(f"worker-{index}")
        return daemon.pid if daemon is not None and daemon.poll() is None else None

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker `index`'s JVM, as a lost machine would: no shutdown, no goodbye to
        the master. Its executors notice their worker is gone and exit."""
        daemon = self._daemons.get(f"worker-{index}")
        if daemon is None or daemon.poll() is not None:
            raise StackError(f"Spark worker {index} is not running; nothing to kill")
        daemon.kill()
        daemon.wait()

    def _check_running(self) -> None:
        for name, log in self._logs().items():
            code = self._daemons[name].poll()
            if code is not None:
                raise StackError(f"the Spark {name} exited with {code}:\n{log_tail(log)}")

    def start(self, timeout_s: float = 90.0) -> SparkCluster:
        """Starts the master and the workers; returns once the master lists every worker as
        ALIVE."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "master",
            MASTER_CLASS,
            *("--host", HOST, "--port", str(self.ports.master)),
            *("--webui-port", str(self.ports.master_ui)),
        )
        for index, (port, ui_port) in enumerate(self.ports.workers):
            self._spawn(
                f"worker-{index}",
                WORKER_CLASS,
                *("--host", HOST, "--port", str(port), "--webui-port", str(ui_port)),
                *("--cores", str(self.cores), "--memory", self.memory),
                *("--work-dir", str(self.work_dir)),
                self.master_url,
            )

        def ready() -> bool:
            self._check_running()
            return len(self.alive_workers()) == len(self.ports.workers)

        try:
            if not wait_until(ready, timeout_s, interval_s=0.5):
                logs = "\n".join(f"{name}:\n{log_tail(log)}" for name, log in self._logs().items())
                raise StackError(
                    f"{len(self.ports.workers)} Spark worker(s) did not all register with "
                    f"{self.master_url} in {timeout_s:.0f}s; logs:\n{logs}"
                )
        except StackError:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        """Workers first, then the master: SIGTERM, and SIGKILL for one still there after
        timeout_s."""
        stop_daemons(self._daemons, "master", timeout_s)

    def __enter__(self) -> SparkCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def loopback_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on right now (held together while
    picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_ports(workers: int = 1) -> ClusterPorts:
    """Free ports for a cluster: the master's two and two per worker."""
    ports = loopback_ports(2 + 2 * workers)
    pairs = tuple((ports[i], ports[i + 1]) for i in range(2, len(ports), 2))
    return ClusterPorts(ports[0], ports[1], pairs)
