"""Monitoring in the local stack: Prometheus, Alertmanager, the alert webhook, the exporter.

Optional: `netflix-assets stack up monitoring` (or any of the names) starts them; a plain
`stack up` does not, so the default stack stays as quick as it was. `stack down` stops them when
they run. Prometheus and Alertmanager are Debian's packages; the rules are the repository's
(`deploy/prometheus/rules/`), the configs are written under `<state>/<name>/` at each start with
loopback ports. Extra scrape targets (a `serve` process, the QoE job) are picked up from
`<state>/prometheus/targets/*.json` (Prometheus file service discovery).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from netflix_assets import settings
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.process import spawn
from netflix_assets.stack.services import Service, _require
from netflix_assets.web.config import web_port

GROUP = "monitoring"
RULES_DIR = settings.REPO_ROOT / "deploy" / "prometheus" / "rules"
ALERTS_TOPIC = "alerts"


def _port(env: str, default: int) -> int:
    return int(os.environ.get(env, str(default)))


def prometheus_port() -> int:
    return _port("NETFLIX_ASSETS_PROMETHEUS_PORT", 19090)


def alertmanager_port() -> int:
    return _port("NETFLIX_ASSETS_ALERTMANAGER_PORT", 19094)


def webhook_port() -> int:
    return _port("NETFLIX_ASSETS_ALERT_WEBHOOK_PORT", 19095)


def exporter_port() -> int:
    return _port("NETFLIX_ASSETS_EXPORTER_PORT", 19096)


def targets_dir() -> Path:
    """Drop a file_sd JSON file here to have Prometheus scrape another process."""
    return settings.state_dir() / "prometheus" / "targets"


def prometheus_config(scrape_interval_s: int = 10, evaluation_interval_s: int = 5) -> dict:
    host = settings.HOST
    static = {
        "prometheus": prometheus_port(),
        "alertmanager": alertmanager_port(),
        "alert-webhook": webhook_port(),
        # The viewer app (`stack up web`); down while it is not started, which is an alert.
        "web": web_port(),
    }
    return {
        "global": {
            "scrape_interval": f"{scrape_interval_s}s",
            "evaluation_interval": f"{evaluation_interval_s}s",
            "external_labels": {"environment": "local"},
        },
        "rule_files": [str(RULES_DIR / "*.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{host}:{alertmanager_port()}"]}]}]
        },
        "scrape_configs": [
            *(
                {"job_name": job, "static_configs": [{"targets": [f"{host}:{port}"]}]}
                for job, port in static.items()
            ),
            # It queries the Dagster instance and Kafka's group offsets: not every 10 s.
            {
                "job_name": "platform",
                "scrape_interval": "30s",
                "scrape_timeout": "20s",
                "static_configs": [{"targets": [f"{host}:{exporter_port()}"]}],
            },
            {
                "job_name": "discovered",
                "file_sd_configs": [
                    {"files": [str(targets_dir() / "*.json")], "refresh_interval": "5s"}
                ],
            },
        ],
    }


def alertmanager_config(group_wait_s: int = 1) -> dict:
    return {
        "route": {
            "receiver": "netflix-assets-webhook",
            "group_by": ["alertname", "job"],
            "group_wait": f"{group_wait_s}s",
            "group_interval": "10s",
            "repeat_interval": "4h",
        },
        "receivers": [
            {
                "name": "netflix-assets-webhook",
                "webhook_configs": [
                    {
                        "url": f"http://{settings.HOST}:{webhook_port()}/alerts",
                        "send_resolved": True,
                    }
                ],
            }
        ],
    }


def _write_yaml_as_json(path: Path, config: dict) -> None:
    """YAML is a superset of JSON: the configs are written as JSON, readable by both tools."""
    path.write_text(json.dumps(config, indent=2) + "\n")


class PrometheusService(Service):
    def __init__(self) -> None:
        port = prometheus_port()
        super().__init__(
            name="prometheus",
            port=port,
            port_env="NETFLIX_ASSETS_PROMETHEUS_PORT",
            marker=str(settings.state_dir() / "prometheus" / "prometheus.yml"),
            endpoint=f"http://{settings.HOST}:{port}",
        )

    @property
    def config(self) -> Path:
        return self.home / "prometheus.yml"

    def prepare(self) -> None:
        targets_dir().mkdir(parents=True, exist_ok=True)
        _write_yaml_as_json(self.config, prometheus_config())

    def start(self) -> int:
        binary = _require("prometheus", "prometheus")
        return spawn(
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.home / 'data'}",
                "--storage.tsdb.retention.time=15d",
                f"--web.listen-address={settings.HOST}:{self.port}",
                "--web.enable-lifecycle",
            ],
            self.log,
        )


class AlertmanagerService(Service):
    def __init__(self) -> None:
        port = alertmanager_port()
        super().__init__(
            name="alertmanager",
            port=port,
            port_env="NETFLIX_ASSETS_ALERTMANAGER_PORT",
            marker=str(settings.state_dir() / "alertmanager" / "alertmanager.yml"),
            endpoint=f"http://{settings.HOST}:{port}",
        )

    @property
    def config(self) -> Path:
        return self.home / "alertmanager.yml"

    def prepare(self) -> None:
        _write_yaml_as_json(self.config, alertmanager_config())

    def start(self) -> int:
        binary = _require("prometheus-alertmanager", "prometheus-alertmanager")
        return spawn(
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.path={self.home / 'data'}",
                f"--web.listen-address={settings.HOST}:{self.port}",
                "--cluster.listen-address=",  # one node: no gossip port
            ],
            self.log,
        )


class AlertWebhookService(Service):
    """The project's Alertmanager receiver: alerts to Kafka's `alerts` topic and a log."""

    def __init__(self) -> None:
        port = webhook_port()
        super().__init__(
            name="alert-webhook",
            port=port,
            port_env="NETFLIX_ASSETS_ALERT_WEBHOOK_PORT",
            marker="netflix_assets.monitoring.alert_webhook",
            endpoint=f"http://{settings.HOST}:{port}/alerts",
        )

    def prepare(self) -> None:
        from resources.kafka import KafkaResource

        try:
            KafkaResource(bootstrap_servers=settings.kafka_bootstrap()).ensure_topics(
                [ALERTS_TOPIC]
            )
        except Exception as exc:
            raise StackError(
                f"the alert webhook needs Kafka for its {ALERTS_TOPIC!r} topic: {exc}; "
                "start it first with `netflix-assets stack up kafka`"
            ) from exc

    def start(self) -> int:
        return spawn(
            [
                sys.executable,
                "-m",
                "netflix_assets.monitoring.alert_webhook",
                f"--port={self.port}",
                f"--log-dir={self.home}",
                f"--topic={ALERTS_TOPIC}",
                f"--bootstrap={settings.kafka_bootstrap()}",
            ],
            self.log,
            cwd=settings.REPO_ROOT,
        )


class PlatformExporterService(Service):
    """Dagster, Kafka-lag and stack-health metrics (netflix_assets/platform_exporter.py)."""

    def __init__(self) -> None:
        port = exporter_port()
        super().__init__(
            name="exporter",
            port=port,
            port_env="NETFLIX_ASSETS_EXPORTER_PORT",
            marker="netflix_assets.platform_exporter",
            start_timeout_s=180.0,  # it loads the code location to know the checks
            endpoint=f"http://{settings.HOST}:{port}/metrics",
        )

    def start(self) -> int:
        return spawn(
            [sys.executable, "-m", "netflix_assets.platform_exporter", f"--port={self.port}"],
            self.log,
            env={
                "DAGSTER_HOME": os.environ.get(
                    "DAGSTER_HOME", str(settings.state_dir() / "dagster")
                )
            },
            cwd=settings.REPO_ROOT,
        )


def services() -> list[Service]:
    """In start order: the receiver before Alertmanager, the exporter before Prometheus."""
    return [
        AlertWebhookService(),
        AlertmanagerService(),
        PlatformExporterService(),
        PrometheusService(),
    ]


def expand(names: list[str]) -> list[str]:
    """`monitoring` stands for all four services."""
    out: list[str] = []
    for name in names:
        if name == GROUP:
            out.extend(s.name for s in services())
        else:
            out.append(name)
    return out
