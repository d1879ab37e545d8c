"""Redis: the online feature store and the dashboards' latest real-time values."""

from __future__ import annotations

from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from netflix_assets import settings


class RedisOps:
    """Client factories over `url` and `socket_timeout_s`; a client holds a connection pool,
    so callers keep theirs."""

    url: str
    socket_timeout_s: float

    def resolved_url(self) -> str:
        """The configured URL, else settings' (env NETFLIX_ASSETS_REDIS_URL or the local stack
        with its generated password, read when connecting)."""
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


@dataclass(frozen=True)
class RedisSettings(RedisOps):
    url: str = ""
    socket_timeout_s: float = 5.0
