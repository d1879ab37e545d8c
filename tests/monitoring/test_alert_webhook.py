"""The Alertmanager webhook receiver: alerts reach Kafka and the log; bad bodies are kept aside."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from netflix_assets.monitoring.alert_webhook import (
    AlertSink,
    NotAnAlertNotification,
    kafka_publisher,
    make_server,
    parse_notification,
)
from resources.kafka import KafkaResource


def notification(*names: str, status: str = "firing") -> dict:
    return {
        "version": "4",
        "status": status,
        "receiver": "netflix-assets-webhook",
        "groupKey": '{}:{alertname="x"}',
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "job": "recs", "severity": "page"},
                "annotations": {"summary": f"{name} happened"},
                "startsAt": "2026-03-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"fp-{name}",
            }
            for name in names
        ],
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({**notification("A"), "version": "3"}).encode(), "version '3'"),
        (json.dumps({**notification("A"), "alerts": []}).encode(), "no 'alerts' list"),
        (
            json.dumps({"version": "4", "alerts": [{"labels": {}}]}).encode(),
            "no labels with an 'alertname'",
        ),
        (
            json.dumps(
                {"version": "4", "alerts": [{"labels": {"alertname": "A"}, "status": "x"}]}
            ).encode(),
            "status 'x'",
        ),
    ],
)
def test_parse_refuses_what_is_not_a_notification(body: bytes, reason: str):
    with pytest.raises(NotAnAlertNotification, match=reason):
        parse_notification(body)


def test_parse_reads_each_alert():
    records = parse_notification(json.dumps(notification("A", "B")).encode())
    assert [r.alertname for r in records] == ["A", "B"]
    assert records[0].labels["job"] == "recs" and records[0].annotations["summary"] == "A happened"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    servers = []

    def start(publish) -> tuple[str, Path]:
        server = make_server("127.0.0.1", 0, AlertSink(publish, tmp_path))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", tmp_path

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.stack
def test_alerts_reach_kafka_and_the_log(serve, kafka_resource: KafkaResource, unique_topic: str):
    url, log_dir = serve(kafka_publisher(kafka_resource.bootstrap_servers, unique_topic))
    since = int(time.time() * 1000) - 1000
    answer = httpx.post(f"{url}/alerts", json=notification("StreamStalled", "CheckFailed"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 2}
    on_kafka = [json.loads(v) for v in kafka_resource.read_since(unique_topic, since)]
    assert sorted(r["alertname"] for r in on_kafka) == ["CheckFailed", "StreamStalled"]
    logged = [json.loads(line) for line in (log_dir / "alerts.jsonl").read_text().splitlines()]
    assert sorted(r["fingerprint"] for r in logged) == ["fp-CheckFailed", "fp-StreamStalled"]
    metrics = httpx.get(f"{url}/metrics").text
    assert 'alert_webhook_alerts_total{alertname="CheckFailed",status="firing"} 1.0' in metrics


@pytest.mark.stack
def test_garbage_is_answered_400_and_quarantined_with_its_reason(
    serve, kafka_resource, unique_topic
):
    url, log_dir = serve(kafka_publisher(kafka_resource.bootstrap_servers, unique_topic))
    answer = httpx.post(f"{url}/alerts", content=b'{"version": "3"}')
    assert answer.status_code == 400 and "version '3'" in answer.json()["error"]
    rejected = json.loads((log_dir / "rejected.jsonl").read_text())
    assert "version '3'" in rejected["reason"] and rejected["body"] == '{"version": "3"}'
    assert not (log_dir / "alerts.jsonl").exists()
    assert httpx.post(f"{url}/elsewhere", json={}).status_code == 404


def test_kafka_down_is_503_so_alertmanager_retries(serve, free_tcp_port: int):
    url, log_dir = serve(kafka_publisher(f"127.0.0.1:{free_tcp_port}", "alerts", timeout_s=2.0))
    answer = httpx.post(f"{url}/alerts", json=notification("A"), timeout=30)
    assert answer.status_code == 503
    assert "retry" in answer.json()["error"]
    assert not (log_dir / "alerts.jsonl").exists()
