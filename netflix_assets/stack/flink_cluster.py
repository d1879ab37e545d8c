"""A standalone Flink cluster on loopback: a JobManager and TaskManagers from the apache-flink
wheel's own distribution in `.venv-flink` (its bin/, lib/, plugins/).

`netflix-assets stack up --with flink` starts one JobManager and one TaskManager as optional
services of the local stack; `netflix-assets stream --cluster` submits the QoE job to it with
`flink run -py`. Tests start private clusters (their own ports and state, two TaskManagers) with
`FlinkCluster` and kill a TaskManager mid-stream.

Checkpoints go to the local filesystem (`<state>/flink/checkpoints`); the JobManager restarts a
failed job from the newest one (fixed-delay restart strategy). Each process serves Flink's
Prometheus reporter (flink-metrics-prometheus from Maven Central, the version of the wheel)
on its own port, listed for the local Prometheus in `<state>/prometheus/targets/flink.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netflix_assets import settings
from netflix_assets.stack import jars
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.process import log_tail, port_open, spawn, stop_daemons, wait_until
from netflix_assets.stack.services import Service

HOST = settings.HOST
FLINK_VERSION = "2.2.1"
JOBMANAGER_CLASS = "StandaloneSessionClusterEntrypoint"
TASKMANAGER_CLASS = "TaskManagerRunner"
QOE_JOB = settings.REPO_ROOT / "streaming" / "qoe_job.py"
STARTUP_RETRIES = 2
"""Restarts of a daemon that exits while the cluster starts (a starved JVM's RPC startup)."""


def flink_venv() -> Path:
    return Path(os.environ.get("NETFLIX_ASSETS_FLINK_VENV", settings.REPO_ROOT / ".venv-flink"))


def flink_home() -> Path:
    """The pyflink package folder: the wheel ships Flink's distribution there."""
    found = sorted(flink_venv().glob("lib/python3*/site-packages/pyflink/bin/jobmanager.sh"))
    if not found:
        raise StackError(
            f"no Flink distribution under {flink_venv()}: run scripts/bootstrap_flink.sh "
            f"(apache-flink=={FLINK_VERSION} in .venv-flink)"
        )
    return found[-1].parent.parent


@dataclass(frozen=True)
class FlinkPorts:
    rpc: int
    rest: int
    metrics: int
    """The JobManager's Prometheus reporter; TaskManager i serves on metrics + 1 + i."""
    taskmanagers: tuple[int, ...]
    """Each TaskManager's RPC port."""

    def metrics_port(self, taskmanager: int | None = None) -> int:
        return self.metrics if taskmanager is None else self.metrics + 1 + taskmanager


def stack_ports(taskmanagers: int = 1) -> FlinkPorts:
    """The local stack's ports (each moved by its NETFLIX_ASSETS_FLINK_* variable)."""

    def port(env: str, default: int) -> int:
        return int(os.environ.get(env, str(default)))

    first_tm = port("NETFLIX_ASSETS_FLINK_TASKMANAGER_PORT", 16124)
    return FlinkPorts(
        rpc=port("NETFLIX_ASSETS_FLINK_RPC_PORT", 16123),
        rest=port("NETFLIX_ASSETS_FLINK_REST_PORT", 18081),
        metrics=port("NETFLIX_ASSETS_FLINK_METRICS_PORT", 19250),
        taskmanagers=tuple(first_tm + i for i in range(taskmanagers)),
    )


def free_ports(taskmanagers: int = 1) -> FlinkPorts:
    """Free loopback ports for a private cluster; the metrics ports are consecutive."""
    from netflix_assets.stack.spark_cluster import loopback_ports  # imports pyspark: tests only

    for _attempt in range(20):
        rpc, rest_port, *tms = loopback_ports(2 + taskmanagers)
        metrics = loopback_ports(1)[0]
        span = range(metrics, metrics + 1 + taskmanagers)
        if not any(port_open(p) for p in span) and not {rpc, rest_port, *tms} & set(span):
            return FlinkPorts(rpc, rest_port, metrics, tuple(tms))
    raise StackError("no run of free loopback ports for the Flink metrics reporters")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def cluster_config(ports: FlinkPorts, state: Path, slots: int) -> dict[str, str]:
    """The cluster's settings, over the distribution's defaults (its JVM flags): loopback only,
    small memory, quick detection of a lost TaskManager, restarts from the latest checkpoint,
    and the Prometheus reporter."""
    return {
        "jobmanager.rpc.address": HOST,
        "jobmanager.rpc.port": str(ports.rpc),
        "jobmanager.bind-host": HOST,
        "jobmanager.memory.process.size": "768m",
        "taskmanager.bind-host": HOST,
        "taskmanager.host": HOST,
        "taskmanager.numberOfTaskSlots": str(slots),
        "taskmanager.memory.process.size": "1280m",
        # The throughput collector, as the local job's JVM (streaming/qoe_job.LOCAL_JVM_OPTIONS).
        "env.java.opts.taskmanager": "-XX:+UseParallelGC",
        "rest.address": HOST,
        "rest.bind-address": HOST,
        "rest.port": str(ports.rest),
        "blob.server.port": "0",
        "parallelism.default": "1",
        # A killed TaskManager is noticed in seconds, not the default 50 s; on a loaded
        # 2-core host a JVM can stall for seconds, so RPC and startup waits stay generous.
        "heartbeat.interval": "2000",
        "heartbeat.timeout": "20000",
        "pekko.startup-timeout": "60 s",
        "pekko.ask.timeout": "60 s",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "30",
        "restart-strategy.fixed-delay.delay": "2 s",
        "execution.checkpointing.dir": (state / "checkpoints").resolve().as_uri(),
        "io.tmp.dirs": str(state / "tmp"),
        "metrics.reporter.prom.factory.class": (
            "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        ),
        "metrics.reporter.prom.port": str(ports.metrics_port()),
    }


def write_conf(ports: FlinkPorts, state: Path, slots: int) -> Path:
    """<state>/conf: the distribution's config.yaml with our settings, its log4j files, and
    <state>/plugins with the Prometheus reporter from Maven Central."""
    import yaml

    home = flink_home()
    conf = state / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (state / "tmp").mkdir(exist_ok=True)
    (state / "log").mkdir(exist_ok=True)
    defaults = _flatten(yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {})
    merged = {**{k: str(v) for k, v in defaults.items()}, **cluster_config(ports, state, slots)}
    (conf / "config.yaml").write_text(yaml.safe_dump(merged, sort_keys=True))
    for name in ("log4j-console.properties", "log4j-cli.properties", "logback-console.xml"):
        (conf / name).write_text((home / "conf" / name).read_text())
    plugin = state / "plugins" / "metrics-prometheus"
    plugin.mkdir(parents=True, exist_ok=True)
    for jar in jars.resolve("flink-metrics"):
        target = plugin / jar.name
        if not target.exists():
            target.symlink_to(jar)
    return conf


def flink_env(state: Path) -> dict[str, str]:
    return {
        "FLINK_CONF_DIR": str(state / "conf"),
        "FLINK_LOG_DIR": str(state / "log"),
        "FLINK_PID_DIR": str(state),
        "FLINK_PLUGINS_DIR": str(state / "plugins"),
        "PYFLINK_CLIENT_EXECUTABLE": str(flink_venv() / "bin" / "python"),
    }


def jobmanager_command() -> list[str]:
    return [str(flink_home() / "bin" / "jobmanager.sh"), "start-foreground"]


def taskmanager_command(ports: FlinkPorts, index: int) -> list[str]:
    """TaskManager `index`: its own RPC port, resource id and Prometheus port."""
    settings_ = {
        "taskmanager.resource-id": f"tm-{index}",
        "taskmanager.rpc.port": str(ports.taskmanagers[index]),
        "metrics.reporter.prom.port": str(ports.metrics_port(index)),
    }
    dynamic = [arg for key, value in settings_.items() for arg in ("-D", f"{key}={value}")]
    return [str(flink_home() / "bin" / "taskmanager.sh"), "start-foreground", *dynamic]


def rest(port: int, path: str, method: str = "GET", timeout_s: float = 5) -> Any:
    """One call to the JobManager's REST API; None while it does not answer."""
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
            return json.loads(body) if body else {}
    except (urllib.error.URLError, OSError, ValueError):
        return None


def registered_taskmanagers(port: int) -> list[dict[str, Any]]:
    return (rest(port, "/taskmanagers") or {}).get("taskmanagers", [])


def prometheus_targets(ports: FlinkPorts) -> list[dict[str, Any]]:
    """file_sd targets for the local Prometheus: job `qoe`, as in deploy/prometheus."""
    metrics = [
        ports.metrics_port(),
        *(ports.metrics_port(i) for i in range(len(ports.taskmanagers))),
    ]
    return [{"targets": [f"{HOST}:{p}" for p in metrics], "labels": {"job": "qoe"}}]


def submit_command(args: list[str], rest_port: int) -> list[str]:
    """`flink run -py` of the QoE job against the cluster, detached: the Python client only
    builds the plan (the connector jar travels as pipeline.jars), the cluster runs it."""
    return [
        str(flink_home() / "bin" / "flink"),
        "run",
        "--detached",
        "-m",
        f"{HOST}:{rest_port}",
        "-py",
        str(QOE_JOB),
        *args,
    ]


def submit(args: list[str], state: Path, rest_port: int, timeout_s: float = 300) -> str:
    """Submits the QoE job; returns its job id (the client's "running job <id>" line)."""
    done = subprocess.run(
        submit_command([*args, "--detach"], rest_port),
        env={**os.environ, **flink_env(state)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=settings.REPO_ROOT,
    )
    for line in done.stdout.splitlines():
        if line.startswith("qoe_job: running job "):
            return line.split()[3]
    raise StackError(
        f"flink run did not submit the QoE job (exit {done.returncode}):\n"
        f"{(done.stdout + done.stderr)[-3000:]}"
    )


class FlinkCluster:
    """A JobManager and `len(ports.taskmanagers)` TaskManagers under `state`, as children of
    this process (a test's private cluster). Use as a context manager."""

    def __init__(self, state: Path, ports: FlinkPorts, slots: int = 1) -> None:
        self.state = state
        self.ports = ports
        self.slots = slots
        self._daemons: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, cmd: list[str]) -> None:
        with open(self.state / f"{name}.out", "ab") as out:
            self._daemons[name] = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **flink_env(self.state)},
                cwd=self.state,
            )

    def start_taskmanager(self, index: int) -> None:
        self._spawn(f"taskmanager-{index}", taskmanager_command(self.ports, index))

    def start(self, timeout_s: float = 180.0) -> FlinkCluster:
        write_conf(self.ports, self.state, self.slots)
        self._spawn("jobmanager", jobmanager_command())
        for index in range(len(self.ports.taskmanagers)):
            self.start_taskmanager(index)
        wanted = len(self.ports.taskmanagers)

        commands = {"jobmanager": jobmanager_command()}
        commands.update(
            {f"taskmanager-{i}": taskmanager_command(self.ports, i) for i in range(wanted)}
        )
        retries = dict.fromkeys(commands, STARTUP_RETRIES)

        def ready() -> bool:
            for name, daemon in list(self._daemons.items()):
                if daemon.poll() is None:
                    continue
                # On a starved host Pekko can miss its own 10 s startup wait ("Could not
                # create actor system"): a fresh start usually passes.
                if retries[name] == 0:
                    raise StackError(
                        f"Flink {name} exited with {daemon.returncode} "
                        f"({STARTUP_RETRIES + 1} starts):\n{log_tail(self.state / f'{name}.out')}"
                    )
                retries[name] -= 1
                self._spawn(name, commands[name])
            return len(registered_taskmanagers(self.ports.rest)) == wanted

        try:
            if not wait_until(ready, timeout_s, interval_s=1.0):
                raise StackError(
                    f"{wanted} Flink TaskManager(s) did not register with the JobManager on "
                    f"{HOST}:{self.ports.rest} in {timeout_s:.0f}s; see {self.state / 'log'}"
                )
        except StackError:
            self.stop()
            raise
        return self

    def kill_taskmanager(self, resource_id: str) -> None:
        """SIGKILL the TaskManager JVM with this resource id (tm-<index>), as a lost machine."""
        daemon = self._daemons.get(f"taskmanager-{resource_id.removeprefix('tm-')}")
        if daemon is None or daemon.poll() is not None:
            raise StackError(f"Flink TaskManager {resource_id} is not running; nothing to kill")
        daemon.kill()
        daemon.wait()

    def submit(self, args: list[str]) -> str:
        return submit(args, self.state, self.ports.rest)

    def job(self, job_id: str) -> dict[str, Any]:
        return rest(self.ports.rest, f"/jobs/{job_id}") or {}

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        return rest(self.ports.rest, f"/jobs/{job_id}/checkpoints") or {}

    def taskmanagers_of(self, job_id: str) -> set[str]:
        """Resource ids of the TaskManagers running the job's subtasks now."""
        running = set()
        for vertex in self.job(job_id).get("vertices", []):
            path = f"/jobs/{job_id}/vertices/{vertex['id']}/taskmanagers"
            for tm in (rest(self.ports.rest, path) or {}).get("taskmanagers", []):
                if tm.get("status") == "RUNNING":
                    running.add(tm["taskmanager-id"])
        return running

    def cancel(self, job_id: str) -> None:
        rest(self.ports.rest, f"/jobs/{job_id}?mode=cancel", method="PATCH")

    def stop(self, timeout_s: float = 20.0) -> None:
        stop_daemons(self._daemons, "jobmanager", timeout_s)

    def __enter__(self) -> FlinkCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stack_state() -> Path:
    """The local stack's Flink folder: conf, logs, plugins and checkpoints."""
    return settings.state_dir() / "flink"


class FlinkJobManagerService(Service):
    """The stack's JobManager (REST and web UI on NETFLIX_ASSETS_FLINK_REST_PORT)."""

    def __init__(self) -> None:
        ports = stack_ports()
        super().__init__(
            name="flink-jobmanager",
            port=ports.rest,
            port_env="NETFLIX_ASSETS_FLINK_REST_PORT",
            marker=JOBMANAGER_CLASS,
            start_timeout_s=240.0,
            endpoint=f"http://{HOST}:{ports.rest}",
        )
        self.ports = ports

    def prepare(self) -> None:
        write_conf(self.ports, stack_state(), slots=2)

    def start(self) -> int:
        return spawn(jobmanager_command(), self.log, env=flink_env(stack_state()))

    def after_start(self) -> None:
        """Lists the reporters for the local Prometheus (monitoring's file discovery)."""
        from netflix_assets.stack import monitoring

        monitoring.targets_dir().mkdir(parents=True, exist_ok=True)
        target = monitoring.targets_dir() / "flink.json"
        target.write_text(json.dumps(prometheus_targets(self.ports), indent=2) + "\n")


class FlinkTaskManagerService(Service):
    """The stack's TaskManager (2 slots); healthy once the JobManager lists it."""

    def __init__(self) -> None:
        ports = stack_ports()
        super().__init__(
            name="flink-taskmanager",
            port=ports.taskmanagers[0],
            port_env="NETFLIX_ASSETS_FLINK_TASKMANAGER_PORT",
            marker=TASKMANAGER_CLASS,
            start_timeout_s=240.0,
            endpoint=f"{HOST}:{ports.taskmanagers[0]}",
        )
        self.ports = ports

    def healthy(self) -> bool:
        return super().healthy() and bool(registered_taskmanagers(self.ports.rest))

    def start(self) -> int:
        return spawn(taskmanager_command(self.ports, 0), self.log, env=flink_env(stack_state()))


GROUP = "flink"


def services() -> list[Service]:
    """Optional services: started only when named (`stack up --with flink`)."""
    return [FlinkJobManagerService(), FlinkTaskManagerService()]


def expand(names: list[str]) -> list[str]:
    """`flink` stands for the JobManager and the TaskManager."""
    return [
        n for name in names for n in ([s.name for s in services()] if name == GROUP else [name])
    ]
