"""The demo's pieces: steps run quietly with their output in a log file, results come from
materialization metadata, and a failing step names itself, its cause and the log.

The whole demo (`make demo`) takes minutes on a shared 2-core machine, so it is not run here; the
platform step is, through the same runner, against the real PostgreSQL of the stack.
"""

from __future__ import annotations

import io

import pytest
from dagster import DagsterInstance
from rich.console import Console

from netflix_assets import demo
from netflix_assets.demo_log import output_to


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=False), out


@pytest.mark.stack
def test_platform_step_prints_results_and_logs_the_event_log(tmp_path) -> None:
    console, out = _console()
    log_path = tmp_path / "demo.log"
    with DagsterInstance.ephemeral() as instance:
        timings = demo.run_steps([demo.platform_step], console, instance, log_path)
    terminal, log = out.getvalue(), log_path.read_text()
    assert [name for name, _ in timings] == ["platform"]
    assert "catalog_schema:" in terminal and "tables in PostgreSQL" in terminal
    assert "✓ platform" in terminal
    # Dagster's event log is in the file, not on the terminal
    for event in ("STEP_START", "ASSET_MATERIALIZATION", "RUN_SUCCESS"):
        assert event in log, event
        assert event not in terminal, event
    assert "===== demo step platform" in log


def test_a_failing_step_names_itself_its_cause_and_the_log(tmp_path) -> None:
    console, out = _console()
    log_path = tmp_path / "demo.log"

    def broken_step(console: Console, instance: DagsterInstance) -> None:
        demo.materialize_assets(instance, ["catalog_schema", "no_such_asset"])

    with DagsterInstance.ephemeral() as instance, pytest.raises(demo.DemoFailed) as failed:
        demo.run_steps([broken_step], console, instance, log_path)
    message = str(failed.value)
    assert "broken step failed" in message and "no_such_asset" in message
    assert str(log_path) in message
    assert "✗ broken failed" in out.getvalue()
    assert "Traceback" in log_path.read_text()


def test_output_to_sends_python_and_child_process_output_to_the_log(tmp_path) -> None:
    import subprocess
    import sys

    log_path = tmp_path / "out.log"
    with output_to(log_path):
        print("from python")
        print("to stderr", file=sys.stderr)
        subprocess.run(["sh", "-c", "echo from a child; echo child stderr >&2"], check=True)
    print("after")  # back where it was
    assert log_path.read_text().splitlines() == [
        "from python",
        "to stderr",
        "from a child",
        "child stderr",
    ]


def test_summary_lists_each_step_and_the_log(tmp_path) -> None:
    console, out = _console()
    console.print(demo.summary([("platform", 1.25), ("lake", 125.0)], tmp_path / "demo.log"))
    text = out.getvalue()
    assert "platform" in text and "1.2s" in text
    assert "lake" in text and "2m 05s" in text
    assert "all" in text and "2m 06s" in text
    assert str(tmp_path / "demo.log") in text.replace("\n", "")


def test_a_failed_run_is_described_by_its_failed_step_and_error() -> None:
    from dagster import asset, materialize

    @asset
    def needs_users() -> None:
        raise ValueError("only 0 users interacted with a new title")

    with DagsterInstance.ephemeral() as instance:
        result = materialize([needs_users], instance=instance, raise_on_error=False)
    assert demo._run_failure(result, []) == (
        "step needs_users failed: ValueError: only 0 users interacted with a new title"
    )
    assert demo._run_failure(result, ["beats_popularity"]) == "failed checks beats_popularity"
