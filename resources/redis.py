"""Redis: the online feature store and the dashboards' latest real-time values."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets import settings


class RedisResource(ConfigurableResource):
    """A Redis client factory; a client holds a connection pool, so callers keep theirs."""

    url: str = Field(
        default="",
        description="redis:// URL with its password, redis://:<password>@host:port/db. Empty: "
        "env NETFLIX_ASSETS_REDIS_URL, else the local stack's Redis with its generated password "
        "(read when connecting, so no password sits in the resource's visible config).",
    )
    socket_timeout_s: float = 5.0

    def resolved_url(self) -> str:
        """The URL to connect to: the configured one, else settings' (env or local stack)."""
        return self.url or settings.redis_url()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.resolved_url(), socket_timeout=self.socket_timeout_s, decode_responses=False
        )

    def async_client(self) -> aioredis.Redis:
        """For code on an event loop (the HTTP service): awaiting never blocks other requests."""
        return aioredis.Redis.from_url(
            self.resolved_url(), socket_timeout=self.socket_timeout_s, decode_responses=False
        )
