"""Redis as a Dagster resource: the plain client factory (netflix_assets/clients/redis.py)
over settings from run config or EnvVar."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets.clients.redis import RedisOps


class RedisResource(RedisOps, ConfigurableResource):
    url: str = Field(
        default="",
        description="redis:// URL with its password, redis://:<password>@host:port/db. Empty: "
        "env NETFLIX_ASSETS_REDIS_URL, else the local stack's Redis with its generated password "
        "(read when connecting, so no password sits in the resource's visible config).",
    )
    socket_timeout_s: float = 5.0
