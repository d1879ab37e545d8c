"""The `netflix-assets` command line: the local stack and the platform's entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import click

from netflix_assets.settings import REPO_ROOT
from netflix_assets.stack import manager
from netflix_assets.stack.errors import StackError


@click.group()
def main() -> None:
    """netflix-assets: the data side of a video-streaming service, as Dagster assets."""


@main.group()
def stack() -> None:
    """Start, stop and inspect the local stack (Kafka, Redis, PostgreSQL on 127.0.0.1)."""


@stack.command("up")
@click.argument("services", nargs=-1)
def stack_up(services: tuple[str, ...]) -> None:
    """Start the stack (or the named services); running services are left alone."""
    try:
        for name, outcome in manager.up(list(services) or None).items():
            click.echo(f"{name:9s} {outcome}")
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@stack.command("down")
@click.argument("services", nargs=-1)
def stack_down(services: tuple[str, ...]) -> None:
    """Stop what this stack started; other processes are never touched."""
    for name, outcome in manager.down(list(services) or None).items():
        click.echo(f"{name:9s} {outcome}")


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print endpoints and health as JSON.")
def stack_status(as_json: bool) -> None:
    """Health of each service; exits 1 when any is down."""
    states = manager.status()
    if as_json:
        payload = {"services": [asdict(s) for s in states], **manager.endpoints()}
        click.echo(json.dumps(payload, indent=2))
    else:
        for s in states:
            health = "healthy" if s.healthy else ("starting" if s.running else "down")
            click.echo(f"{s.name:9s} {health:8s} pid={s.pid or '-':<8} {s.endpoint}")
    sys.exit(0 if all(s.healthy for s in states) else 1)


@stack.command("jars")
def stack_jars() -> None:
    """Resolve the Java dependencies (Kafka broker, Delta, Spark-Kafka) into the cache."""
    from netflix_assets.stack import jars

    for group in ("kafka", "spark"):
        click.echo(f"{group:6s} {len(jars.resolve(group))} jars in {jars.group_dir(group)}")


def _run_module(python: Path, module: str, args: tuple[str, ...]) -> None:
    """Run a module of this repository in the foreground and exit with its status."""
    if not python.exists():
        click.echo(f"error: {python} is missing; run `make bootstrap`", err=True)
        sys.exit(1)
    sys.exit(subprocess.call([str(python), "-m", module, *args], cwd=REPO_ROOT))


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stream(args: tuple[str, ...]) -> None:
    """Run the PyFlink QoE job on Flink's local mini-cluster (its own env, .venv-flink).

    Every option passes through to streaming.qoe_job (`netflix-assets stream --help`)."""
    _run_module(REPO_ROOT / ".venv-flink" / "bin" / "python", "streaming.qoe_job", args)


@main.command(
    "stream-sink", context_settings={"ignore_unknown_options": True, "help_option_names": []}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stream_sink(args: tuple[str, ...]) -> None:
    """Copy the QoE job's Kafka outputs into Redis for dashboards (latest values per key)."""
    _run_module(Path(sys.executable), "streaming.flink.redis_sink", args)


@main.command()
def demo() -> None:
    """Run the end-to-end demo on embedded defaults (starts the stack when it is down)."""
    from netflix_assets import demo as demo_module

    try:
        demo_module.run()
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
