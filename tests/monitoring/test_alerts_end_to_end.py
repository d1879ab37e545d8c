"""Injected faults travel the whole path: metric -> Prometheus rule -> Alertmanager -> webhook ->
Kafka topic `alerts` and the webhook's log.

Faults, all at once so the test waits once (about 90 s, most of it the 1-minute `for` of
ScrapeTargetDown):
- a failing blocking asset check, materialized in a scratch Dagster instance and read by a
  second platform exporter (the real exporter code) -> DagsterBlockingCheckFailed;
- a stalled QoE stream: the test serves `qoe_last_window_end_timestamp_seconds` an hour old
  itself (the platform exporter reads it from the QoE sink's Redis keys; the test does not stop
  the shared QoE job or write those keys) -> QoeStreamStalled;
- a scrape target that is down (a port nobody listens on) -> ScrapeTargetDown.
Each is given a job label unique to this run through a file-SD target file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance, materialize
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from netflix_assets import settings
from netflix_assets.stack import manager, monitoring
from netflix_assets.stack.process import port_open, terminate, wait_until
from resources.kafka import KafkaResource

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture(scope="module")
def monitoring_stack(stack) -> Iterator[None]:
    chosen = monitoring.services()
    was_up = all(s.healthy() for s in chosen)
    manager.up(["monitoring"])
    yield
    if not was_up:
        manager.down([s.name for s in chosen])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(420)
def test_injected_faults_arrive_at_the_webhook(
    monitoring_stack, kafka_resource: KafkaResource, tmp_path: Path
):
    run = uuid.uuid4().hex[:8]
    since_ms = int(time.time() * 1000)

    # Fault 1: a failed blocking check in a scratch instance, exported by the real exporter.
    from fault_definitions import always_fails, e2e_checked_asset

    home = tmp_path / "dagster"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        result = materialize(
            [e2e_checked_asset, always_fails], instance=instance, raise_on_error=False
        )
        assert not result.success  # the blocking check failed the run
    exporter_port = _free_port()
    exporter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netflix_assets.platform_exporter",
            f"--port={exporter_port}",
            "--definitions=fault_definitions:defs",
        ],
        env={
            **os.environ,
            "DAGSTER_HOME": str(home),
            "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Fault 2: a QoE stream whose newest window ended an hour ago.
    registry = CollectorRegistry()
    Gauge(
        "qoe_last_window_end_timestamp_seconds", "end of the newest window", registry=registry
    ).set(time.time() - 3600)
    qoe_port = _free_port()
    qoe_server, _ = start_http_server(qoe_port, addr="127.0.0.1", registry=registry)
    # Fault 3: a target nobody serves.
    down_port = _free_port()
    targets = monitoring.targets_dir() / f"e2e-{run}.json"
    try:
        assert wait_until(lambda: port_open(exporter_port), 120), (
            "the test's exporter did not start"
        )
        scraped = httpx.get(f"http://127.0.0.1:{exporter_port}/metrics", timeout=60).text
        assert (
            'dagster_asset_check_failed{asset_key="e2e_checked_asset",blocking="true",'
            'check_name="always_fails"} 1.0' in scraped
        )
        targets.write_text(
            json.dumps(
                [
                    {
                        "targets": [f"127.0.0.1:{exporter_port}"],
                        "labels": {"job": f"e2e-{run}-dagster"},
                    },
                    {"targets": [f"127.0.0.1:{qoe_port}"], "labels": {"job": f"e2e-{run}-qoe"}},
                    {"targets": [f"127.0.0.1:{down_port}"], "labels": {"job": f"e2e-{run}-down"}},
                ]
            )
        )
        expected = {
            ("DagsterBlockingCheckFailed", f"e2e-{run}-dagster"),
            ("QoeStreamStalled", f"e2e-{run}-qoe"),
            ("ScrapeTargetDown", f"e2e-{run}-down"),
        }
        seen: dict[tuple[str, str], dict] = {}
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not expected <= set(seen):
            time.sleep(5)
            for value in kafka_resource.read_since(monitoring.ALERTS_TOPIC, since_ms):
                record = json.loads(value)
                key = (record["alertname"], record["labels"].get("job", ""))
                if key in expected and record["status"] == "firing":
                    seen[key] = record
        assert expected <= set(seen), f"arrived: {sorted(seen)}; expected {sorted(expected)}"
        check = seen[("DagsterBlockingCheckFailed", f"e2e-{run}-dagster")]
        assert check["labels"]["asset_key"] == "e2e_checked_asset"
        assert check["labels"]["check_name"] == "always_fails"
        assert "downstream assets are held back" in check["annotations"]["summary"]
        logged = (settings.state_dir() / "alert-webhook" / "alerts.jsonl").read_text()
        for alertname, job in expected:
            assert any(
                json.loads(line)["alertname"] == alertname
                and json.loads(line)["labels"].get("job") == job
                for line in logged.splitlines()
            ), (alertname, job)
    finally:
        targets.unlink(missing_ok=True)
        qoe_server.shutdown()
        terminate(exporter.pid)
