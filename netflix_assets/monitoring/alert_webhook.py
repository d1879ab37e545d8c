"""Alertmanager's webhook receiver: each alert to a Kafka topic and to a JSON-lines log.

Alertmanager POSTs a group of alerts (payload version 4) to ``/alerts``. Every alert becomes one
record, keyed by its fingerprint, on the ``alerts`` topic and one line in ``alerts.jsonl``; the
answer is 200 only once Kafka has acknowledged them all, so on a Kafka outage Alertmanager gets a
503 and retries (nothing is lost). A payload that is not an Alertmanager notification is answered
400 with the reason and kept with that reason in ``rejected.jsonl``.

Run: ``python -m netflix_assets.monitoring.alert_webhook --port 19095 --log-dir <dir>``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

ALERTS_TOPIC = "alerts"
MAX_BODY_BYTES = 1 << 20  # Alertmanager's groups are small; a bigger body is not one of them

Publish = Callable[[list[tuple[bytes, bytes]]], None]
"""Sends (key, value) records and returns once all are acknowledged; raises on failure."""


class NotAnAlertNotification(ValueError):
    """A body that is not an Alertmanager webhook payload (version 4); the message says why."""


@dataclass(frozen=True)
class AlertRecord:
    fingerprint: str
    status: str
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    receiver: str
    group_key: str

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()


def parse_notification(body: bytes) -> list[AlertRecord]:
    """The alerts of one Alertmanager notification, or NotAnAlertNotification naming the cause."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAnAlertNotification(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise NotAnAlertNotification("body is not a JSON object")
    if payload.get("version") != "4":
        raise NotAnAlertNotification(
            f"payload version {payload.get('version')!r}; this receiver reads Alertmanager's "
            "webhook version '4'"
        )
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise NotAnAlertNotification("payload has no 'alerts' list")
    records = []
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise NotAnAlertNotification(f"alert {i} is not an object")
        labels = alert.get("labels")
        if not isinstance(labels, dict) or "alertname" not in labels:
            raise NotAnAlertNotification(f"alert {i} has no labels with an 'alertname'")
        if alert.get("status") not in ("firing", "resolved"):
            raise NotAnAlertNotification(f"alert {i} has status {alert.get('status')!r}")
        records.append(
            AlertRecord(
                fingerprint=str(alert.get("fingerprint", "")),
                status=alert["status"],
                alertname=str(labels["alertname"]),
                labels={str(k): str(v) for k, v in labels.items()},
                annotations={str(k): str(v) for k, v in (alert.get("annotations") or {}).items()},
                starts_at=str(alert.get("startsAt", "")),
                ends_at=str(alert.get("endsAt", "")),
                receiver=str(payload.get("receiver", "")),
                group_key=str(payload.get("groupKey", "")),
            )
        )
    return records


class AlertSink:
    """Publishes alerts, then appends them to the log; counts what it did for /metrics."""

    def __init__(self, publish: Publish, log_dir: Path) -> None:
        self.publish = publish
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.received = Counter(
            "alert_webhook_alerts",
            "Alerts received, by alert name and status.",
            ["alertname", "status"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "alert_webhook_rejected_payloads",
            "Bodies that were not alerts.",
            registry=self.registry,
        )
        self.publish_errors = Counter(
            "alert_webhook_publish_errors",
            "Notifications answered 503 because Kafka did not take them.",
            registry=self.registry,
        )

    def accept(self, records: list[AlertRecord]) -> None:
        try:
            self.publish([(r.fingerprint.encode(), r.to_json()) for r in records])
        except Exception:
            self.publish_errors.inc()
            raise
        self._append("alerts.jsonl", [r.to_json().decode() for r in records])
        for r in records:
            self.received.labels(r.alertname, r.status).inc()

    def reject(self, body: bytes, reason: str) -> None:
        self.rejected.inc()
        line = json.dumps(
            {
                "reason": reason,
                "received_at": time.time(),
                "body": body[:4096].decode(errors="replace"),
            }
        )
        self._append("rejected.jsonl", [line])

    def _append(self, name: str, lines: list[str]) -> None:
        with self._lock, open(self.log_dir / name, "a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)


def make_server(host: str, port: int, sink: AlertSink) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/alerts":
                self._answer(404, {"error": f"no such path {self.path!r}; POST to /alerts"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                sink.reject(b"", f"body of {length} bytes is over {MAX_BODY_BYTES}")
                self._answer(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                return
            body = self.rfile.read(length)
            try:
                records = parse_notification(body)
            except NotAnAlertNotification as exc:
                sink.reject(body, str(exc))
                self._answer(400, {"error": str(exc)})
                return
            try:
                sink.accept(records)
            except Exception as exc:
                self._answer(503, {"error": f"alerts not stored, retry: {exc}"})
                return
            self._answer(200, {"stored": len(records)})

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(sink.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._answer(200, {"status": "ok"})
            else:
                self._answer(404, {"error": f"no such path {self.path!r}"})

        def _answer(self, code: int, payload: dict) -> None:
            self._send(code, json.dumps(payload).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the alert log is the record, not one line per request."""

    return ThreadingHTTPServer((host, port), Handler)


def kafka_publisher(bootstrap_servers: str, topic: str, timeout_s: float = 10.0) -> Publish:
    """A publisher on an idempotent producer that waits for every record's acknowledgement."""
    from netflix_assets.clients.kafka import KafkaClient, KafkaSettings

    kafka = KafkaClient(KafkaSettings.from_env(bootstrap_servers=bootstrap_servers))
    producer = kafka.producer(**{"linger.ms": 5, "compression.type": "none"})

    def publish(records: list[tuple[bytes, bytes]]) -> None:
        errors: list[str] = []

        def on_delivery(err, _msg) -> None:
            if err is not None:
                errors.append(str(err))

        for key, value in records:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
        left = producer.flush(timeout_s)
        if left or errors:
            # Drop what is still queued: Alertmanager resends the whole group after the 503,
            # and a late delivery of this attempt would duplicate it.
            producer.purge()
            producer.flush(0)
            raise RuntimeError(
                f"Kafka at {bootstrap_servers} took {len(records) - left - len(errors)} of "
                f"{len(records)} alerts on {topic!r}: {errors or 'timed out'}"
            )

    return publish


def main(argv: list[str] | None = None) -> None:
    from netflix_assets import settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=settings.HOST)
    p.add_argument("--port", type=int, default=19095)
    p.add_argument("--log-dir", type=Path, required=True)
    p.add_argument("--topic", default=ALERTS_TOPIC)
    p.add_argument("--bootstrap", default=settings.kafka_bootstrap())
    args = p.parse_args(argv)
    sink = AlertSink(kafka_publisher(args.bootstrap, args.topic), args.log_dir)
    server = make_server(args.host, args.port, sink)
    print(f"alert webhook on http://{args.host}:{args.port}/alerts -> {args.topic}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
