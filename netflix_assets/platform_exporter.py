"""A Prometheus exporter for what has no /metrics of its own: Dagster, Kafka lag, stack health.

- Dagster (reads the instance and the code location's asset graph): ``dagster_runs_total{status}``,
  ``dagster_asset_check_failed{asset_key, check_name, blocking}`` (1 when the latest evaluation
  failed), ``dagster_asset_newest_partition_timestamp_seconds{asset_key}`` (start of the newest
  materialized event-date partition).
- Kafka: ``kafka_consumergroup_lag{consumergroup, topic, partition}`` (high watermark minus the
  group's committed offset; the names of the common kafka-exporter, so the rules work with it too).
- QoE stream (the sink's Redis keys): ``qoe_last_window_end_timestamp_seconds``,
  ``qoe_window_attempts``, ``qoe_rebuffer_ratio``, ``qoe_startup_p95_seconds``
  ``{cdn, country, device}``.
- Stack: ``netflix_assets_service_up{service}`` (1 when the service's port accepts a connection).

Each collector catches its own failure and reports ``netflix_assets_exporter_collector_up{collector}
= 0`` instead, so a service that is down shows as an alert, never as a failed scrape.

Run: ``python -m netflix_assets.platform_exporter --port 19096``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import socket
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from netflix_assets import settings

log = logging.getLogger(__name__)


class _Source:
    """One source of metrics; `Exporter` calls `collect_metrics` and guards it."""

    name = "base"

    def collect_metrics(self) -> Iterator[Metric]:
        raise NotImplementedError


class Exporter(Collector):
    """Runs every source; one that fails is reported with collector_up 0, not a failed scrape."""

    def __init__(self, sources: list[_Source]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "netflix_assets_exporter_collector_up",
            "1 when the collector read its source on this scrape.",
            labels=["collector"],
        )
        collected: list[Metric] = []
        for source in self.sources:
            try:
                collected.extend(source.collect_metrics())
            except Exception as exc:
                log.warning("collector %s failed: %s", source.name, exc)
                up.add_metric([source.name], 0)
            else:
                up.add_metric([source.name], 1)
        yield up
        yield from collected


class ServiceHealthCollector(_Source):
    name = "stack"

    def __init__(self, endpoints: dict[str, tuple[str, int]]) -> None:
        self.endpoints = endpoints

    def collect_metrics(self) -> Iterator[Metric]:
        g = GaugeMetricFamily(
            "netflix_assets_service_up",
            "1 when the service accepts a TCP connection.",
            labels=["service"],
        )
        for service, (host, port) in self.endpoints.items():
            with socket.socket() as sock:
                sock.settimeout(0.5)
                g.add_metric([service], 1.0 if sock.connect_ex((host, port)) == 0 else 0.0)
        yield g


class KafkaLagCollector(_Source):
    name = "kafka"

    def __init__(self, bootstrap_servers: str, timeout_s: float = 5.0) -> None:
        from netflix_assets.clients.kafka import KafkaClient, KafkaSettings

        kafka = KafkaClient(KafkaSettings.from_env(bootstrap_servers=bootstrap_servers))
        self.admin = kafka.admin()
        self.consumer = kafka.consumer("netflix-assets-exporter")
        self.timeout_s = timeout_s

    def collect_metrics(self) -> Iterator[Metric]:
        from confluent_kafka import ConsumerGroupTopicPartitions

        g = GaugeMetricFamily(
            "kafka_consumergroup_lag",
            "Records between the group's committed offset and the partition's end.",
            labels=["consumergroup", "topic", "partition"],
        )
        listed = self.admin.list_consumer_groups(request_timeout=self.timeout_s).result()
        for group in sorted(g.group_id for g in listed.valid):
            futures = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
            for tp in futures[group].result().topic_partitions:
                if tp.offset < 0:  # nothing committed for this partition
                    continue
                _, high = self.consumer.get_watermark_offsets(tp, timeout=self.timeout_s)
                g.add_metric([group, tp.topic, str(tp.partition)], max(high - tp.offset, 0))
        yield g


class DagsterCollector(_Source):
    name = "dagster"

    def __init__(self, instance_factory: Callable, asset_graph_factory: Callable) -> None:
        self._instance_factory = instance_factory
        self._asset_graph_factory = asset_graph_factory
        self._instance = None
        self._graph = None

    def collect_metrics(self) -> Iterator[Metric]:
        from dagster import DagsterRunStatus, RunsFilter

        from netflix_assets.partitions import event_date_partitions

        if self._instance is None:
            self._instance = self._instance_factory()
            self._graph = self._asset_graph_factory()
        instance, graph = self._instance, self._graph
        runs = CounterMetricFamily("dagster_runs", "Runs by status.", labels=["status"])
        for status in DagsterRunStatus:
            count = instance.get_runs_count(filters=RunsFilter(statuses=[status]))
            runs.add_metric([status.value], count)
        yield runs
        failed = GaugeMetricFamily(
            "dagster_asset_check_failed",
            "1 when the check's latest evaluation failed, 0 when it passed.",
            labels=["asset_key", "check_name", "blocking"],
        )
        for key in sorted(graph.asset_check_keys, key=str):
            record = instance.get_latest_asset_check_evaluation_record(key)
            evaluation = record.evaluation if record is not None else None
            if evaluation is None:
                continue
            flag = evaluation.blocking
            if flag is None:  # evaluations recorded before Dagster stored the flag
                flag = graph.get_check_spec(key).blocking
            blocking = str(bool(flag)).lower()
            failed.add_metric(
                [key.asset_key.to_user_string(), key.name, blocking],
                0.0 if evaluation.passed else 1.0,
            )
        yield failed
        newest = GaugeMetricFamily(
            "dagster_asset_newest_partition_timestamp_seconds",
            "Start (UTC) of the newest materialized event-date partition.",
            labels=["asset_key"],
        )
        for key in sorted(graph.materializable_asset_keys, key=str):
            if graph.get(key).partitions_def != event_date_partitions:
                continue
            keys = instance.get_materialized_partitions(key)
            if keys:
                day = dt.datetime.fromisoformat(max(keys)).replace(tzinfo=dt.UTC)
                newest.add_metric([key.to_user_string()], day.timestamp())
        yield newest


DEFAULT_DEFINITIONS = "netflix_assets.definitions:defs"


class QoeRedisCollector(_Source):
    """The QoE stream's latest results, as the stream sink keeps them in Redis (docs/STREAMING.md).

    `qoe_last_window_end_timestamp_seconds` from `<prefix>:meta`; per (cdn, country, device),
    over the titles' windows that end at the newest window end: `qoe_window_attempts` (sum),
    `qoe_rebuffer_ratio` (stall / (stall + playback), summed as the job defines it) and
    `qoe_startup_p95_seconds` (the attempts-weighted mean of the titles' p95, an approximation:
    percentiles do not add).
    """

    name = "qoe"

    def __init__(self, client_factory: Callable, prefix: str = "qoe:v1") -> None:
        self._client_factory = client_factory
        self._client = None
        self.prefix = prefix

    def collect_metrics(self) -> Iterator[Metric]:
        if self._client is None:
            self._client = self._client_factory()
        client = self._client
        last = GaugeMetricFamily(
            "qoe_last_window_end_timestamp_seconds", "End of the QoE job's newest window."
        )
        meta = client.hget(f"{self.prefix}:meta", "last_qoe_window_end")
        if meta:
            last.add_metric([], _epoch_s(meta.decode()))
        yield last
        keys = list(client.scan_iter(match=f"{self.prefix}:window:*", count=1000))
        pipe = client.pipeline()
        for key in keys:
            pipe.hgetall(key)
        windows = [{k.decode(): v.decode() for k, v in h.items()} for h in pipe.execute() if h]
        newest = max((w.get("window_end", "") for w in windows), default="")
        sums: dict[tuple[str, str, str], list[float]] = {}
        for w in windows:
            if w.get("window_end") != newest:
                continue
            acc = sums.setdefault((w["cdn"], w["country"], w["device"]), [0.0, 0.0, 0.0, 0.0])
            attempts = _number(w.get("attempts"))
            acc[0] += attempts
            acc[1] += _number(w.get("stall_ms"))
            acc[2] += _number(w.get("playback_ms"))
            acc[3] += attempts * _number(w.get("startup_p95_ms"))
        labels = ["cdn", "country", "device"]
        attempts_g = GaugeMetricFamily("qoe_window_attempts", "Playback attempts.", labels=labels)
        ratio_g = GaugeMetricFamily(
            "qoe_rebuffer_ratio", "Stall / (stall + playback).", labels=labels
        )
        startup_g = GaugeMetricFamily(
            "qoe_startup_p95_seconds", "Startup p95 (attempts-weighted).", labels=labels
        )
        for dims, (attempts, stall, playback, weighted_p95) in sorted(sums.items()):
            attempts_g.add_metric(list(dims), attempts)
            if stall + playback > 0:
                ratio_g.add_metric(list(dims), stall / (stall + playback))
            if attempts > 0:
                startup_g.add_metric(list(dims), weighted_p95 / attempts / 1000.0)
        yield from (attempts_g, ratio_g, startup_g)


def _number(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0
    except ValueError:
        return 0.0


def _epoch_s(rfc3339: str) -> float:
    return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def registry(
    include_dagster: bool = True,
    include_kafka: bool = True,
    definitions: str = DEFAULT_DEFINITIONS,
) -> CollectorRegistry:
    """The exporter's collectors against the local stack's (or the environment's) endpoints."""
    ports = settings.ports()
    sources: list[_Source] = [
        ServiceHealthCollector(
            {
                "kafka": (settings.HOST, ports.kafka),
                "redis": (settings.HOST, ports.redis),
                "postgres": (settings.HOST, ports.postgres),
            }
        )
    ]
    if include_kafka:
        sources.append(KafkaLagCollector(settings.kafka_bootstrap()))
    sources.append(QoeRedisCollector(_redis_client))
    if include_dagster:
        sources.append(DagsterCollector(_instance, lambda: _asset_graph(definitions)))
    reg = CollectorRegistry()
    reg.register(Exporter(sources))
    return reg


def _redis_client():
    from netflix_assets.clients.redis import RedisSettings

    return RedisSettings().client()


def _instance():
    from dagster import DagsterInstance

    return DagsterInstance.get()


def _asset_graph(definitions: str):
    """The asset graph of `module:attribute` (a Definitions), which names every check."""
    import importlib

    module, _, attribute = definitions.partition(":")
    return getattr(importlib.import_module(module), attribute).resolve_asset_graph()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=settings.HOST)
    p.add_argument("--port", type=int, default=19096)
    p.add_argument("--no-dagster", action="store_true", help="Skip the Dagster collector.")
    p.add_argument("--definitions", default=DEFAULT_DEFINITIONS, help="module:Definitions.")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    reg = registry(not args.no_dagster, definitions=args.definitions)
    start_http_server(args.port, addr=args.host, registry=reg)
    print(f"platform exporter on http://{args.host}:{args.port}/metrics", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
