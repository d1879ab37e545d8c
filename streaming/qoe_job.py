"""The real-time QoE job: viewing-events -> concurrent viewers, QoE windows, alerts (PyFlink).

Python only builds the plan: the SQL from streaming/qoe_sql.py runs in the JVM, so a Flink
cluster needs no Python on its TaskManagers. Locally it runs on Flink's mini-cluster:

    .venv-flink/bin/python -m streaming.qoe_job            # resumes from the latest checkpoint

and unchanged on a cluster (the connector jar travels with -j, see docs/STREAMING.md):

    flink run -j flink-sql-connector-kafka-5.0.0-2.2.jar -py streaming/qoe_job.py -- --jars none
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# `flink run -py streaming/qoe_job.py` puts streaming/ first on sys.path, not the repository.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from netflix_assets import settings  # noqa: E402
from netflix_assets.clients.kafka import KafkaSettings  # noqa: E402
from streaming.qoe_sql import (  # noqa: E402
    QoeConfig,
    Thresholds,
    ddl_statements,
    insert_statements,
)


def default_checkpoint_dir() -> Path:
    return settings.state_dir() / "flink" / "checkpoints"


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete checkpoint (one with _metadata) of any earlier run of the job.

    Flink writes <dir>/<job id>/chk-<n>/_metadata and only writes _metadata once the checkpoint
    is complete, so a checkpoint cut short by a kill is never picked."""
    candidates = list(checkpoint_dir.glob("*/chk-*/_metadata"))
    if not candidates:
        return None
    return max(candidates, key=lambda m: m.stat().st_mtime).parent


def connector_jars(spec: str) -> list[str]:
    """`auto`: the flink jar group the bootstrap resolved (or NETFLIX_ASSETS_FLINK_JARS);
    `none`: the cluster provides the connector (flink run -j); otherwise a comma-separated
    list of jar paths."""
    if spec == "none":
        return []
    if spec == "auto":
        from netflix_assets import settings

        return settings.jars("flink")
    return [str(Path(p).resolve()) for p in spec.split(",") if p]


LOCAL_JVM_OPTIONS = "-XX:+UseParallelGC"
"""The throughput collector for the job's JVM: the job is short of CPU, not of pause time (its
windows fire seconds after they end), and G1's concurrent work and write barriers cost more CPU
per event. Draining a 4M-event backlog on 2 cores, alternating: 71,000-74,900 events per job CPU
second against 65,000-68,000 with G1 in three pairs (docs/STREAMING.md). The standalone cluster's
TaskManagers get the same flag (netflix_assets/stack/flink_cluster.py)."""


def local_jvm_env(jvm_options: str, environ: dict[str, str]) -> dict[str, str]:
    """JVM_ARGS for the local JVM that PyFlink's gateway starts (at TableEnvironment.create):
    `jvm_options` after any JVM_ARGS already set. PyFlink puts JVM_ARGS before its own options
    (the module opens it needs), so they are added to, not replaced. Under `flink run` the
    client's JVM already runs and this changes nothing."""
    if not jvm_options.strip():
        return {}
    return {"JVM_ARGS": f"{environ.get('JVM_ARGS', '')} {jvm_options}".strip()}


def flink_settings(args: argparse.Namespace, restore_from: Path | None) -> dict[str, str]:
    """Job settings: checkpoints retained on cancel (and on a kill, which never cleans up), UTC
    windows, and the connector jars."""
    options = {
        "pipeline.name": "qoe-job",
        "pipeline.object-reuse": "true",
        "parallelism.default": str(args.parallelism),
        "table.local-time-zone": "UTC",
        "execution.checkpointing.interval": f"{args.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": Path(args.checkpoint_dir).resolve().as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        "state.backend.type": args.state_backend,
    }
    for item in args.flink_conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"qoe_job: --flink-conf {item!r} is not KEY=VALUE")
        options[key.strip()] = value.strip()
    jars = connector_jars(args.jars)
    if jars:
        options["pipeline.jars"] = ";".join(Path(j).as_uri() for j in jars)
    if restore_from is not None:
        options["execution.state-recovery.path"] = restore_from.as_uri()
    return options


def config_from_args(args: argparse.Namespace) -> QoeConfig:
    return QoeConfig(
        bootstrap_servers=args.bootstrap_servers,
        kafka_properties=KafkaSettings.from_env(
            bootstrap_servers=args.bootstrap_servers
        ).flink_properties(),
        events_topic=args.events_topic,
        aggregates_topic=args.aggregates_topic,
        alerts_topic=args.alerts_topic,
        group_id=args.group_id,
        startup_mode=args.startup_mode,
        bounded=args.bounded,
        out_of_orderness_ms=args.out_of_orderness_ms,
        allowed_lateness_ms=args.allowed_lateness_ms,
        idle_timeout_ms=args.idle_timeout_ms,
        watermark_emit=args.watermark_emit,
        viewers_window_ms=args.viewers_window_ms,
        viewers_slide_ms=args.viewers_slide_ms,
        qoe_window_ms=args.qoe_window_ms,
        thresholds=Thresholds(
            min_attempts=args.min_attempts,
            max_startup_p95_ms=args.max_startup_p95_ms,
            max_rebuffer_ratio=args.max_rebuffer_ratio,
            max_error_rate=args.max_error_rate,
            min_avg_bitrate_kbps=args.min_avg_bitrate_kbps,
        ),
        delivery=args.delivery,
        transactional_id_prefix=args.transactional_id_prefix,
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qoe_job", description=__doc__.splitlines()[0])
    d = QoeConfig(bootstrap_servers="")
    t = Thresholds()
    p.add_argument("--bootstrap-servers", default=settings.kafka_bootstrap())
    p.add_argument("--events-topic", default=d.events_topic)
    p.add_argument("--aggregates-topic", default=d.aggregates_topic)
    p.add_argument("--alerts-topic", default=d.alerts_topic)
    p.add_argument("--group-id", default=d.group_id)
    p.add_argument(
        "--startup-mode",
        default=d.startup_mode,
        choices=["group-offsets", "earliest-offset", "latest-offset"],
    )
    p.add_argument("--bounded", action="store_true", help="stop at the offsets latest at start")
    p.add_argument("--out-of-orderness-ms", type=int, default=d.out_of_orderness_ms)
    p.add_argument("--allowed-lateness-ms", type=int, default=d.allowed_lateness_ms)
    p.add_argument("--idle-timeout-ms", type=int, default=d.idle_timeout_ms)
    p.add_argument(
        "--watermark-emit", default=d.watermark_emit, choices=["on-periodic", "on-event"]
    )
    p.add_argument("--viewers-window-ms", type=int, default=d.viewers_window_ms)
    p.add_argument("--viewers-slide-ms", type=int, default=d.viewers_slide_ms)
    p.add_argument("--qoe-window-ms", type=int, default=d.qoe_window_ms)
    p.add_argument("--min-attempts", type=int, default=t.min_attempts)
    p.add_argument("--max-startup-p95-ms", type=float, default=t.max_startup_p95_ms)
    p.add_argument("--max-rebuffer-ratio", type=float, default=t.max_rebuffer_ratio)
    p.add_argument("--max-error-rate", type=float, default=t.max_error_rate)
    p.add_argument("--min-avg-bitrate-kbps", type=float, default=t.min_avg_bitrate_kbps)
    p.add_argument("--delivery", default=d.delivery, choices=["at-least-once", "exactly-once"])
    p.add_argument("--transactional-id-prefix", default=d.transactional_id_prefix)
    p.add_argument("--parallelism", type=int, default=1)
    p.add_argument("--checkpoint-dir", default=str(default_checkpoint_dir()))
    p.add_argument("--checkpoint-interval-ms", type=int, default=10_000)
    p.add_argument("--state-backend", default="hashmap", choices=["hashmap", "rocksdb"])
    p.add_argument(
        "--restore",
        default="auto",
        help="auto (latest checkpoint in --checkpoint-dir, if any), none, or a checkpoint path",
    )
    p.add_argument(
        "--flink-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Flink or table option set on the job, over the job's own (repeatable)",
    )
    p.add_argument(
        "--jvm-options",
        default=LOCAL_JVM_OPTIONS,
        help="options of the local mini-cluster's JVM (added to PyFlink's own through JVM_ARGS; "
        "ignored by `flink run`, where the cluster's TaskManagers run the job)",
    )
    p.add_argument("--jars", default="auto", help="auto, none, or comma-separated jar paths")
    p.add_argument("--print-sql", action="store_true", help="print the statements and exit")
    p.add_argument("--explain", action="store_true", help="print Flink's plan for the job and exit")
    p.add_argument(
        "--detach",
        action="store_true",
        help="return once the job is submitted (`flink run` to a cluster); the cluster runs it",
    )
    return p


def restore_path(args: argparse.Namespace) -> Path | None:
    if args.restore == "none":
        return None
    if args.restore == "auto":
        return latest_checkpoint(Path(args.checkpoint_dir))
    path = Path(args.restore).resolve()
    if not (path / "_metadata").is_file():
        raise SystemExit(f"qoe_job: no checkpoint at {path} (expected {path / '_metadata'})")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cfg = config_from_args(args)
    statements = [*ddl_statements(cfg), *insert_statements(cfg)]
    if args.print_sql:
        print(";\n\n".join(statements) + ";")
        return 0

    from pyflink.table import EnvironmentSettings, TableEnvironment

    restore_from = restore_path(args)
    os.environ.update(local_jvm_env(args.jvm_options, os.environ))
    Path(args.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in flink_settings(args, restore_from).items():
        env.get_config().set(key, value)
    for ddl in ddl_statements(cfg):
        env.execute_sql(ddl)
    statement_set = env.create_statement_set()
    for insert in insert_statements(cfg):
        statement_set.add_insert_sql(insert)
    if args.explain:
        print(statement_set.explain())
        return 0
    result = statement_set.execute()
    job_id = result.get_job_client().get_job_id()
    restored = f" from {restore_from}" if restore_from else ""
    print(f"qoe_job: running job {job_id}{restored}", flush=True)
    if args.detach:
        return 0
    result.wait()
    print(f"qoe_job: job {job_id} finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
