"""Prometheus metrics of the web app, served at GET /metrics.

- `web_http_request_duration_seconds{method, route, status}`: request time by route template
  (`/title/{title_id}`, never the raw path; `unmatched` for a path no route knows);
- `web_events_accepted_total`: viewing events Kafka acknowledged;
- `web_events_rejected_total{reason}`: refused events, by the contract rule broken (`type`,
  `pattern`, `required`, ...) or `other_profile` / `other_account`;
- `web_event_batches_refused_total{reason}`: whole batches (`not_json`, `not_a_batch`, `empty`,
  `too_many_events`, `too_large`);
- `web_events_produce_failed_total`: valid events of batches Kafka did not acknowledge (503);
- `web_playback_authorizations_total{result, reason}`: POST /v1/playback `granted`, or `refused`
  with `not_found`, `maturity`, `no_subscription`, `stream_limit`, `nothing_playable`, `no_master`;
- `web_playback_streams_active`: stream leases live now, all accounts (PostgreSQL, at scrape).

Labels hold only these bounded values, never an id or a message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Mount, Route

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404 from the router), so scanners probing
random paths add one series, not one per path."""
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ACTIVE_STREAMS_SQL = (
    "SELECT count(*) FROM product.playback_streams WHERE ended_at IS NULL AND lease_until > now()"
)


class _ActiveStreams(Collector):
    """Live stream leases, counted in PostgreSQL when Prometheus scrapes. A failed count leaves
    the metric out of that scrape (the gap shows) instead of failing the whole scrape."""

    def __init__(self, connect: Callable[[], psycopg.Connection]) -> None:
        self.connect = connect

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.connect() as conn:
                count = conn.execute(ACTIVE_STREAMS_SQL).fetchone()[0]
        except psycopg.Error as exc:
            log.warning("web_playback_streams_active: PostgreSQL count failed: %s", exc)
            return
        yield GaugeMetricFamily(
            "web_playback_streams_active",
            "Playback streams whose lease is live (counted against the plans' screen limits).",
            value=count,
        )


class WebMetrics:
    """The app's metrics in a registry of its own (one app per registry, so tests can run
    several apps in one process)."""

    def __init__(self, connect: Callable[[], psycopg.Connection]) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "web_http_request_duration_seconds",
            "Time to answer a request, by route template and status.",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.events_accepted = Counter(
            "web_events_accepted",
            "Viewing events produced and acknowledged by Kafka.",
            registry=self.registry,
        )
        self.events_rejected = Counter(
            "web_events_rejected",
            "Viewing events refused, by the contract rule broken or the ownership check.",
            ["reason"],
            registry=self.registry,
        )
        self.batches_refused = Counter(
            "web_event_batches_refused",
            "Event batches refused whole, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.produce_failed = Counter(
            "web_events_produce_failed",
            "Valid events of batches that Kafka did not acknowledge (the batch got a 503).",
            registry=self.registry,
        )
        self.playback_authorizations = Counter(
            "web_playback_authorizations",
            "Playback requests (POST /v1/playback) granted or refused, by reason.",
            ["result", "reason"],
            registry=self.registry,
        )
        self.registry.register(_ActiveStreams(connect))

    def granted(self) -> None:
        self.playback_authorizations.labels("granted", "").inc()

    def refused(self, reason: str) -> None:
        self.playback_authorizations.labels("refused", reason).inc()


class RequestTimer:
    """ASGI middleware: times each HTTP request into `web_http_request_duration_seconds`,
    labelled by the route template the router matched. FastAPI's own routes leave themselves in
    the scope; a plain Starlette route or mount leaves its endpoint, looked up in `routes`."""

    def __init__(self, app: Any, histogram: Histogram, routes: list[BaseRoute]) -> None:
        self.app = app
        self.histogram = histogram
        self.routes = routes
        self._paths: dict[int, str] | None = None

    def _template(self, scope: dict) -> str:
        route = scope.get("route")
        if route is not None:
            return route.path
        if self._paths is None:  # first use: every route is registered by now
            self._paths = {
                id(r.endpoint if isinstance(r, Route) else r.app): r.path
                for r in self.routes
                if isinstance(r, Route | Mount)
            }
        return self._paths.get(id(scope.get("endpoint")), UNMATCHED)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app raises before answering

        async def send_with_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.histogram.labels(scope["method"], self._template(scope), str(status)).observe(
                time.perf_counter() - started
            )
