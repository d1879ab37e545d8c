"""The platform exporter reads real sources: the QoE sink's Redis keys, Kafka, stack health."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from netflix_assets import settings
from netflix_assets.platform_exporter import (
    Exporter,
    KafkaLagCollector,
    QoeRedisCollector,
    ServiceHealthCollector,
)

pytestmark = pytest.mark.stack


def _samples(*sources) -> dict[tuple[str, tuple], float]:
    reg = CollectorRegistry()
    reg.register(Exporter(list(sources)))
    text = generate_latest(reg).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_qoe_metrics_come_from_the_newest_windows_in_redis(redis_resource):
    prefix = f"test-qoe-{uuid.uuid4().hex[:8]}"
    client = redis_resource.client()
    windows = {
        # two titles on the same CDN/country/device in the newest window, one stale window
        "t1:tv:akamai:US": ("2026-12-03T10:05:00Z", 30, 900, 9100, 3000),
        "t2:tv:akamai:US": ("2026-12-03T10:05:00Z", 10, 100, 900, 7000),
        "t3:tv:akamai:US": ("2026-12-03T10:00:00Z", 500, 99_000, 1000, 60_000),
    }
    try:
        for key, (end, attempts, stall, playback, p95) in windows.items():
            _, device, cdn, country = key.split(":")
            client.hset(
                f"{prefix}:window:{key}",
                mapping={
                    "window_end": end,
                    "device": device,
                    "cdn": cdn,
                    "country": country,
                    "attempts": attempts,
                    "stall_ms": stall,
                    "playback_ms": playback,
                    "startup_p95_ms": p95,
                },
            )
        client.hset(f"{prefix}:meta", mapping={"last_qoe_window_end": "2026-12-03T10:05:00Z"})
        got = _samples(QoeRedisCollector(redis_resource.client, prefix))
    finally:
        client.delete(*client.keys(f"{prefix}:*"))
    dims = (("cdn", "akamai"), ("country", "US"), ("device", "tv"))
    assert got[("qoe_last_window_end_timestamp_seconds", ())] == 1796292300.0
    assert got[("qoe_window_attempts", dims)] == 40
    assert got[("qoe_rebuffer_ratio", dims)] == pytest.approx(1000 / 11_000)
    assert got[("qoe_startup_p95_seconds", dims)] == pytest.approx((30 * 3 + 10 * 7) / 40)
    assert got[("netflix_assets_exporter_collector_up", (("collector", "qoe"),))] == 1.0


def test_a_source_that_is_down_is_reported_not_raised(free_tcp_port: int, kafka_resource):
    def broken():
        raise ConnectionError("redis is down")

    got = _samples(
        QoeRedisCollector(broken, "nothing"),
        ServiceHealthCollector(
            {"kafka": ("127.0.0.1", settings.ports().kafka), "nobody": ("127.0.0.1", free_tcp_port)}
        ),
        KafkaLagCollector(kafka_resource.bootstrap_servers),
    )
    assert got[("netflix_assets_exporter_collector_up", (("collector", "qoe"),))] == 0.0
    assert got[("netflix_assets_exporter_collector_up", (("collector", "stack"),))] == 1.0
    assert got[("netflix_assets_exporter_collector_up", (("collector", "kafka"),))] == 1.0
    assert got[("netflix_assets_service_up", (("service", "nobody"),))] == 0.0
