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
        default=settings.redis_url(),
        description="redis:// URL with its password, redis://:<password>@host:port/db "
        "(env NETFLIX_ASSETS_REDIS_URL; locally the stack's generated password).",
    )
    socket_timeout_s: float = 5.0

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.url, socket_timeout=self.socket_timeout_s, decode_responses=False
        )

    def async_client(self) -> aioredis.Redis:
        """For code on an event loop (the HTTP service): awaiting never blocks other requests."""
        return aioredis.Redis.from_url(
            self.url, socket_timeout=self.socket_timeout_s, decode_responses=False
        )
