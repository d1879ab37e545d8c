"""The object store as a Dagster resource: the plain client's behaviour
(netflix_assets/clients/object_store.py) over settings that come from run config or EnvVar."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets import settings
from netflix_assets.clients.object_store import (
    InvalidKey,
    ObjectNotFound,
    ObjectStoreOps,
    check_key,
)

__all__ = ["InvalidKey", "ObjectNotFound", "ObjectStoreResource", "check_key"]


class ObjectStoreResource(ObjectStoreOps, ConfigurableResource):
    """Keys are '/'-separated paths below `root`; `root` is a folder or `s3://bucket/prefix`."""

    root: str = Field(
        default=settings.object_store_root(),
        description="Local folder or s3://bucket/prefix (env NETFLIX_ASSETS_OBJECT_STORE).",
    )
    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint for MinIO or another S3-compatible server."
    )
    region_name: str = "us-east-1"
