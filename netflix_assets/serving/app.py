"""The HTTP API (FastAPI): GET /v1/recommendations/{user_id}?k=20, /healthz, /metrics.

Per request: one Redis round trip (a pipeline of HGETALL on the user's online features and
SMEMBERS on the titles they have watched), then recommender.recommend on the current bundle.
The handler runs on the event loop (`async def`): its work is about a millisecond of CPU-bound
numpy and LightGBM, and a hop to the thread pool cost more than it saved on two cores. The Redis
read is awaited (redis.asyncio), so a slow or unreachable Redis stalls only its own requests,
never the loop that serves every other one (and /healthz). The body is serialized with orjson
straight to bytes, and a Server-Timing header reports the handler's own time, so a client can
tell server time from network and queueing.

Experiments (netflix_assets/experiments/serving.py): each running experiment whose traffic the
profile falls in assigns it one variant from a stable hash of profile and salt; the variants'
serving parameters (MMR's lambda) change the pipeline for this request, the response names the
variants, and one exposure event per experiment goes to Kafka without the request waiting.
`metrics=False` serves without Prometheus instrumentation (no /metrics): the benchmark's
baseline for what metrics cost.

What leaves the server is for a client: /healthz and error bodies name no host, port or file
path (those go to the server's log), and a bearer token reads only its own subject's profile
(see auth.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import orjson
import redis
import redis.asyncio as aioredis
from fastapi import FastAPI, Header, HTTPException, Path, Query, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from netflix_assets.experiments.serving import ExposureLog, RunningExperiments, serving_params
from netflix_assets.serving.auth import AuthConfig, Forbidden, Unauthorized
from netflix_assets.serving.bundle import Bundle
from netflix_assets.serving.recommender import recommend
from netflix_assets.serving.store import ModelStore

log = logging.getLogger(__name__)
USER_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
MAX_K = 100


class _Off:
    """Stands in for every metric when metrics are off."""

    def labels(self, *_: str) -> _Off:
        return self

    def inc(self, *_: float) -> None:
        pass

    def observe(self, *_: float) -> None:
        pass


def _metrics(registry: CollectorRegistry, store: ModelStore, exposures: ExposureLog | None):
    latency = Histogram(
        "recs_request_seconds",
        "Time to answer a recommendation request, Redis read included.",
        buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
        registry=registry,
    )
    requests = Counter(
        "recs_requests", "Recommendation requests by outcome.", ["outcome"], registry=registry
    )
    swaps = Gauge("recs_model_swaps", "Releases swapped in since start.", registry=registry)
    swaps.set_function(lambda: store.swaps)
    errors = Gauge("recs_model_load_errors", "Releases that failed to load.", registry=registry)
    errors.set_function(lambda: store.load_errors)
    loaded = Gauge(
        "recs_model_loaded_timestamp_seconds", "When the bundle loaded.", registry=registry
    )
    loaded.set_function(lambda: store.loaded_at or 0.0)
    exposed = Counter(
        "recs_experiment_exposures",
        "Exposure events queued, by experiment and variant.",
        ["experiment_id", "variant"],
        registry=registry,
    )
    if exposures is not None:
        lost = Gauge(
            "recs_experiment_exposures_lost",
            "Exposure events dropped (producer queue full) or not delivered to Kafka.",
            registry=registry,
        )
        lost.set_function(lambda: exposures.lost)
    return latency, requests, exposed


def _variant_bundle(bundle: Bundle, params: dict[str, float], cache: dict) -> Bundle:
    """The bundle with a variant's pipeline parameters, made once per release and parameters."""
    key = (bundle.version, tuple(sorted(params.items())))
    if key not in cache:
        if len(cache) > 32 or any(k[0] != bundle.version for k in cache):
            cache.clear()  # a new release: the old variants' bundles go with the old release
        pipeline = dataclasses.replace(bundle.pipeline, **params)
        cache[key] = dataclasses.replace(bundle, pipeline=pipeline)
    return cache[key]


def _public_load_error(error: str | None) -> str | None:
    """The store's last error without its detail (object-store paths, hosts): which release
    failed, and where to look."""
    if error is None:
        return None
    found = re.match(r"release (\S+):", error)
    which = f"release {found.group(1)}" if found else "the release poll"
    return f"{which} failed to load; the reason is in the server's log"


def create_app(
    store: ModelStore,
    connect: Callable[[], aioredis.Redis],
    auth: AuthConfig,
    experiments: RunningExperiments | None = None,
    exposures: ExposureLog | None = None,
    metrics: bool = True,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> FastAPI:
    """`connect` makes an asyncio Redis client (RedisResource().async_client). An asyncio
    client belongs to the event loop it first ran on, so the app keeps one per loop: one in a
    server, one per request under a TestClient used without `with`. `clock` dates assignments
    and exposures (a test moves it)."""
    clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
        weakref.WeakKeyDictionary()
    )

    def client() -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if loop not in clients:
            clients[loop] = connect()
        return clients[loop]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # On a graceful shutdown, stop the poller and the preparer child here: uvicorn then
        # re-raises SIGTERM, so code after uvicorn.run never runs.
        store.stop()
        if experiments is not None:
            experiments.stop()
        if exposures is not None:
            exposures.close()

    app = FastAPI(title="netflix-assets recommendations", version="1", lifespan=lifespan)
    registry = CollectorRegistry()
    latency, requests, exposed = (
        _metrics(registry, store, exposures) if metrics else (_Off(), _Off(), _Off())
    )
    variant_bundles: dict = {}

    @app.get("/healthz")
    async def healthz(response: Response) -> dict:
        bundle = store.current
        try:
            await client().ping()
            redis_ok = True
        except (redis.RedisError, OSError) as exc:
            log.warning("healthz: Redis unreachable: %s", exc)
            redis_ok = False
        ok = bundle is not None and redis_ok
        response.status_code = 200 if ok else 503
        return {
            "status": "ok" if ok else "unavailable",
            "model_version": bundle.version if bundle else None,
            "ranker_engine": bundle.scorer.engine if bundle else None,
            "redis": redis_ok,
            "last_load_error": _public_load_error(store.last_error),
        }

    if metrics:

        @app.get("/metrics")
        def prometheus_metrics() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/recommendations/{user_id}")
    async def recommendations(
        user_id: Annotated[str, Path(description="The profile to recommend for.")],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="How many titles.")] = 20,
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        started = time.perf_counter()
        try:
            auth.authorize(x_api_key, authorization, user_id)
        except Unauthorized as exc:
            requests.labels("unauthorized").inc()
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        except Forbidden as exc:
            requests.labels("forbidden").inc()
            raise HTTPException(403, str(exc)) from exc
        if not USER_ID.match(user_id):
            requests.labels("bad_request").inc()
            raise HTTPException(
                422, "user_id must be 1-128 characters of letters, digits and . _ : @ -"
            )
        bundle = store.current
        if bundle is None:
            requests.labels("no_model").inc()
            raise HTTPException(
                503, "no model released yet: materialize recommender_release (netflix-assets train)"
            )
        prefix = bundle.online_prefix
        try:
            pipe = client().pipeline(transaction=False)
            pipe.hgetall(f"{prefix}:user:{user_id}")
            pipe.smembers(f"{prefix}:seen:{user_id}")
            raw_features, raw_seen = await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            requests.labels("feature_store_down").inc()
            log.error("online feature store unavailable: %s", exc)
            raise HTTPException(503, "online feature store unavailable; retry later") from exc
        features = {k_.decode(): v.decode() for k_, v in raw_features.items()}
        seen = [t.decode() for t in raw_seen]
        now = clock()
        assigned = experiments.assignments(user_id, now.date()) if experiments else []
        params = serving_params(assigned)
        served = _variant_bundle(bundle, params, variant_bundles) if params else bundle
        result = recommend(served, user_id, features, seen, k)
        requests.labels("cold_start" if result.cold_start else "ok").inc()
        if assigned and exposures is not None:
            exposures.log(assigned, user_id, now)
            for a in assigned:
                exposed.labels(a.experiment.experiment_id, a.variant.name).inc()
        body = orjson.dumps(
            {
                "user_id": user_id,
                "model_version": bundle.version,
                "cold_start": result.cold_start,
                "experiments": {a.experiment.experiment_id: a.variant.name for a in assigned},
                "items": [
                    {"title_id": i.title_id, "score": round(i.score, 6), "reason": i.reason}
                    for i in result.items
                ],
            }
        )
        elapsed = time.perf_counter() - started
        latency.observe(elapsed)
        return Response(
            body,
            media_type="application/json",
            headers={"Server-Timing": f"app;dur={elapsed * 1000:.2f}"},
        )

    return app
