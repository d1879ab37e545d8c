"""The QoE job's plan as Flink optimizes it (`qoe_job --explain`, no broker needed): what each
event costs is decided here, so the plan's shape is held by a test."""

from __future__ import annotations

import re
import subprocess

import pytest
from qoe_testkit import REPO_ROOT, job_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plan(flink_python: str) -> str:
    result = subprocess.run(
        job_command("--explain", "--restore=none", "--parallelism=2"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    marker = "== Optimized Execution Plan =="
    assert marker in result.stdout, result.stdout[-3000:]
    return result.stdout.split(marker, 1)[1]


def test_every_event_is_aggregated_twice_not_three_times(plan: str) -> None:
    """Concurrent viewers (HOP) and the QoE windows (TUMBLE), each once: the alerts and the
    window records read one QoE aggregation. When the alerts asked for fewer measurements than
    the window records, the planner gave them a whole second aggregation of the stream."""
    local = re.findall(r"LocalWindowAggregate\(groupBy=\[([^\]]*)\], window=\[(\w+)", plan)
    assert sorted(local) == [("title_id", "HOP"), ("title_id, device, cdn, country", "TUMBLE")]


def test_the_source_converts_only_the_fields_the_job_reads(plan: str) -> None:
    scan = re.search(r"TableSourceScan\(.*fields=\[([^\]]*)\]", plan)
    assert scan, plan[:2000]
    fields = {f.strip() for f in scan.group(1).split(",")}
    assert not fields & {"user_id", "profile_id", "os", "position_ms", "rendition", "error_code"}
    assert {"event_id", "session_id", "title_id", "event_type", "event_ts"} <= fields
