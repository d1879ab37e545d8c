"""The Flink cluster's hooks in the local stack and the CLI, without starting a JVM (the fault
test in tests/streaming/test_flink_cluster.py runs a real cluster)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from netflix_assets.cli import main
from netflix_assets.stack import flink_cluster, manager
from streaming import qoe_job


def test_flink_is_an_optional_group_of_the_stack() -> None:
    assert [s.name for s in manager._select(["kafka", "flink"])] == [
        "kafka",
        "flink-jobmanager",
        "flink-taskmanager",
    ]
    assert "flink-jobmanager" not in [s.name for s in manager._select(None)]


def test_cluster_config_is_loopback_with_restarts_and_the_prometheus_reporter() -> None:
    ports = flink_cluster.FlinkPorts(rpc=1, rest=2, metrics=10, taskmanagers=(3, 4))
    config = flink_cluster.cluster_config(ports, Path("/state"), slots=2)
    for key in ("jobmanager.bind-host", "taskmanager.bind-host", "rest.bind-address"):
        assert config[key] == "127.0.0.1", key
    assert config["restart-strategy.type"] == "fixed-delay"
    assert config["execution.checkpointing.dir"] == "file:///state/checkpoints"
    assert config["metrics.reporter.prom.factory.class"].endswith("PrometheusReporterFactory")
    assert config["env.java.opts.taskmanager"] == qoe_job.LOCAL_JVM_OPTIONS
    tm1 = flink_cluster.taskmanager_command(ports, 1)
    assert "metrics.reporter.prom.port=12" in tm1 and "taskmanager.rpc.port=4" in tm1
    (target,) = flink_cluster.prometheus_targets(ports)
    assert target["targets"] == ["127.0.0.1:10", "127.0.0.1:11", "127.0.0.1:12"]
    assert target["labels"] == {"job": "qoe"}


def test_stream_cluster_without_a_cluster_names_the_fix(monkeypatch) -> None:
    monkeypatch.setenv("NETFLIX_ASSETS_FLINK_REST_PORT", "1")
    monkeypatch.setattr("netflix_assets.cli._prepare_stream_topics", lambda args: None)
    result = CliRunner().invoke(main, ["stream", "--cluster"])
    assert result.exit_code == 2
    assert "stack up --with flink" in result.output


def test_the_local_job_jvm_gets_its_options_added_to_jvm_args() -> None:
    """PyFlink's gateway puts JVM_ARGS before its own module opens, so the job's options are
    appended to what the caller set, never replacing it; an empty value adds nothing."""
    default = qoe_job.parser().parse_args([]).jvm_options
    assert default == "-XX:+UseParallelGC"
    assert qoe_job.local_jvm_env(default, {}) == {"JVM_ARGS": "-XX:+UseParallelGC"}
    assert qoe_job.local_jvm_env(default, {"JVM_ARGS": "-Xmx2g"}) == {
        "JVM_ARGS": "-Xmx2g -XX:+UseParallelGC"
    }
    assert qoe_job.local_jvm_env(" ", {"JVM_ARGS": "-Xmx2g"}) == {}
