"""The monitoring configuration in the repository is valid and its rules behave as specified.

`promtool test rules` runs the unit tests in deploy/prometheus/tests/ (each alert fires on its
fault and stays quiet on the healthy neighbour series); every Grafana panel's query must parse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from netflix_assets import settings
from netflix_assets.settings import REPO_ROOT
from netflix_assets.stack import monitoring
from netflix_assets.web.config import web_port

PROM = REPO_ROOT / "deploy" / "prometheus"
GRAFANA = REPO_ROOT / "deploy" / "grafana"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found: run `make bootstrap` "
            "(apt-get install prometheus prometheus-alertmanager)"
        )
    return path


def _run(cmd: list[str], cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_rule_files_are_valid():
    files = sorted(str(p) for p in (PROM / "rules").glob("*.yml"))
    assert len(files) == 5
    result = _run([_tool("promtool"), "check", "rules", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    tests = sorted(str(p) for p in (PROM / "tests").glob("*.test.yml"))
    assert len(tests) == 5
    result = _run([_tool("promtool"), "test", "rules", *tests])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_rule_unit_tests_can_fail(tmp_path: Path):
    """A broken threshold is caught: the p99 budget raised to 1 s fails the serving test."""
    rules = tmp_path / "rules"
    tests = tmp_path / "tests"
    shutil.copytree(PROM / "rules", rules)
    shutil.copytree(PROM / "tests", tests)
    serving = rules / "serving.yml"
    serving.write_text(serving.read_text().replace("p99_5m > 0.05", "p99_5m > 1"))
    result = _run([_tool("promtool"), "test", "rules", str(tests / "serving.test.yml")], tmp_path)
    assert result.returncode != 0
    assert "RecsServingP99OverBudget" in result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_a_runbook():
    alerts = set()
    for f in (PROM / "rules").glob("*.yml"):
        text = f.read_text()
        alerts |= {
            line.split(":", 1)[1].strip() for line in text.splitlines() if "- alert:" in line
        }
    tested = "".join(f.read_text() for f in (PROM / "tests").glob("*.test.yml"))
    assert alerts and all(f"alertname: {a}" in tested for a in alerts), alerts
    runbook = (REPO_ROOT / "docs" / "OPERATIONS.md").read_text().lower()
    for f in (PROM / "rules").glob("*.yml"):
        for anchor in (
            line.split("#", 1)[1] for line in f.read_text().splitlines() if "runbook:" in line
        ):
            assert f"## {anchor.replace('-', ' ')}" in runbook, anchor


def test_production_and_local_configs_are_valid(tmp_path: Path):
    result = _run([_tool("promtool"), "check", "config", str(PROM / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run([_tool("amtool"), "check-config", str(PROM / "alertmanager.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    local = tmp_path / "prometheus.yml"
    local.write_text(json.dumps(monitoring.prometheus_config()))
    result = _run([_tool("promtool"), "check", "config", str(local)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 rule files found" in result.stdout
    jobs = {c["job_name"]: c for c in monitoring.prometheus_config()["scrape_configs"]}
    assert jobs["web"]["static_configs"][0]["targets"] == [f"{settings.HOST}:{web_port()}"]
    assert "job_name: web" in (PROM / "prometheus.yml").read_text()
    am = tmp_path / "alertmanager.yml"
    am.write_text(json.dumps(monitoring.alertmanager_config()))
    result = _run([_tool("amtool"), "check-config", str(am)])
    assert result.returncode == 0, result.stdout + result.stderr


def _panel_queries() -> list[tuple[str, str]]:
    queries = []
    for f in sorted(GRAFANA.glob("*.json")):
        dashboard = json.loads(f.read_text())
        for panel in dashboard["panels"]:
            queries.extend((f"{f.name}: {panel['title']}", t["expr"]) for t in panel["targets"])
    return queries


def test_every_dashboard_query_parses(tmp_path: Path):
    """promtool parses each panel's PromQL as a recording rule's expression."""
    queries = _panel_queries()
    assert len(queries) >= 12
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [{"record": f"panel_{i}", "expr": q} for i, (_, q) in enumerate(queries)],
            }
        ]
    }
    path = tmp_path / "panels.yml"
    path.write_text(json.dumps(rules))
    result = _run([_tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    # and the check can fail: a broken query is reported
    rules["groups"][0]["rules"].append({"record": "broken", "expr": "sum by (job (up)"})
    path.write_text(json.dumps(rules))
    assert _run([_tool("promtool"), "check", "rules", str(path)]).returncode != 0
