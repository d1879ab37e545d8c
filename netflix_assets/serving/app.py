"""The HTTP API (FastAPI): GET /v1/recommendations/{user_id}?k=20, /healthz, /metrics.

Per request: one Redis round trip (a pipeline of HGETALL on the user's online features and
SMEMBERS on the titles they have watched), then recommender.recommend on the current bundle.
The handler runs on the event loop (`async def`): its work is about a millisecond of CPU-bound
numpy and LightGBM plus a sub-millisecond loopback Redis read, and a hop to the thread pool cost
more than it saved on two cores. The body is serialized with orjson straight to bytes, and a
Server-Timing header reports the handler's own time, so a client can tell server time from
network and queueing.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import orjson
import redis
from fastapi import FastAPI, Header, HTTPException, Path, Query, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from netflix_assets.serving.auth import AuthConfig, Unauthorized
from netflix_assets.serving.recommender import recommend
from netflix_assets.serving.store import ModelStore

USER_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
MAX_K = 100


def _metrics(registry: CollectorRegistry, store: ModelStore):
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
    return latency, requests


def create_app(store: ModelStore, client: redis.Redis, auth: AuthConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # On a graceful shutdown, stop the poller and the preparer child here: uvicorn then
        # re-raises SIGTERM, so code after uvicorn.run never runs.
        store.stop()

    app = FastAPI(title="netflix-assets recommendations", version="1", lifespan=lifespan)
    registry = CollectorRegistry()
    latency, requests = _metrics(registry, store)

    @app.get("/healthz")
    def healthz(response: Response) -> dict:
        bundle = store.current
        try:
            client.ping()
            redis_ok = True
        except redis.RedisError:
            redis_ok = False
        ok = bundle is not None and redis_ok
        response.status_code = 200 if ok else 503
        return {
            "status": "ok" if ok else "unavailable",
            "model_version": bundle.version if bundle else None,
            "ranker_engine": bundle.scorer.engine if bundle else None,
            "redis": redis_ok,
            "last_load_error": store.last_error,
        }

    @app.get("/metrics")
    def metrics() -> Response:
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
            auth.check(x_api_key, authorization)
        except Unauthorized as exc:
            requests.labels("unauthorized").inc()
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
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
            pipe = client.pipeline(transaction=False)
            pipe.hgetall(f"{prefix}:user:{user_id}")
            pipe.smembers(f"{prefix}:seen:{user_id}")
            raw_features, raw_seen = pipe.execute()
        except redis.RedisError as exc:
            requests.labels("feature_store_down").inc()
            raise HTTPException(503, f"online feature store unavailable: {exc}") from exc
        features = {k_.decode(): v.decode() for k_, v in raw_features.items()}
        seen = [t.decode() for t in raw_seen]
        result = recommend(bundle, user_id, features, seen, k)
        requests.labels("cold_start" if result.cold_start else "ok").inc()
        body = orjson.dumps(
            {
                "user_id": user_id,
                "model_version": bundle.version,
                "cold_start": result.cold_start,
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
