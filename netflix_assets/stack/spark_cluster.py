"""A standalone Spark cluster on loopback: one master and one worker, from the pyspark wheel.

The lake's jobs run in-process through the Spark resource and, unchanged, under `spark-submit`
against a cluster. This starts the smallest real cluster to prove the second path: pyspark's own
`bin/spark-class` runs the Master and Worker daemons, so Java and the wheel are all it needs.
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
from netflix_assets.stack.process import log_tail, wait_until

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
    worker: int
    worker_ui: int


class SparkCluster:
    """One master and one worker under `state` (logs, work dir, scratch). Use as a context
    manager, or call start() and stop()."""

    def __init__(
        self, state: Path, ports: ClusterPorts, cores: int = 1, memory: str = "1g"
    ) -> None:
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
        """Where the worker runs executors: one folder per application and executor."""
        return self.state / "work"

    @property
    def master_log(self) -> Path:
        return self.state / "master.log"

    @property
    def worker_log(self) -> Path:
        return self.state / "worker.log"

    def _spawn(self, main: str, log: Path, *args: str) -> None:
        """spark-class execs java, so the child process is the daemon itself. It stays in the
        caller's process group: a Ctrl-C that ends the caller ends the cluster too."""
        with open(log, "ab") as out:
            self._daemons[main] = subprocess.Popen(
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

    def _worker_alive(self) -> bool:
        status = self.status() or {}
        return any(w.get("state") == "ALIVE" for w in status.get("workers", []))

    def _check_running(self) -> None:
        for main, log in ((MASTER_CLASS, self.master_log), (WORKER_CLASS, self.worker_log)):
            code = self._daemons[main].poll()
            if code is not None:
                name = main.rsplit(".", 1)[1]
                raise StackError(f"the Spark {name} exited with {code}:\n{log_tail(log)}")

    def start(self, timeout_s: float = 90.0) -> SparkCluster:
        """Starts both daemons and returns once the master lists the worker as ALIVE."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            MASTER_CLASS,
            self.master_log,
            *("--host", HOST, "--port", str(self.ports.master)),
            *("--webui-port", str(self.ports.master_ui)),
        )
        self._spawn(
            WORKER_CLASS,
            self.worker_log,
            *("--host", HOST, "--port", str(self.ports.worker)),
            *("--webui-port", str(self.ports.worker_ui)),
            *("--cores", str(self.cores), "--memory", self.memory),
            *("--work-dir", str(self.work_dir)),
            self.master_url,
        )

        def ready() -> bool:
            self._check_running()
            return self._worker_alive()

        try:
            if not wait_until(ready, timeout_s, interval_s=0.5):
                raise StackError(
                    f"the Spark worker did not register with {self.master_url} in {timeout_s:.0f}s"
                    f"; worker log:\n{log_tail(self.worker_log)}"
                )
        except StackError:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        """Worker first, then master: SIGTERM, and SIGKILL for one still there after timeout_s."""
        for main in (WORKER_CLASS, MASTER_CLASS):
            daemon = self._daemons.pop(main, None)
            if daemon is None:
                continue
            daemon.terminate()
            try:
                daemon.wait(timeout_s)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()

    def __enter__(self) -> SparkCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_ports() -> ClusterPorts:
    """Four distinct loopback ports nobody listens on right now (held together while picked)."""
    sockets = [socket.socket() for _ in range(4)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        master, master_ui, worker, worker_ui = (s.getsockname()[1] for s in sockets)
    finally:
        for sock in sockets:
            sock.close()
    return ClusterPorts(master, master_ui, worker, worker_ui)
