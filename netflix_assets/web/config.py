"""What the web app needs to run: its signing key, where the edge and the services are.

Plain values read from the environment (production) with the local stack's defaults; the CLI
builds one WebConfig and hands it to create_app, so nothing below reads the environment again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from netflix_assets import settings

SIGNING_KEY_SECRET = "web-signing-key"
"""Name of the generated key under <state>/secrets/ for the local stack (NETFLIX_ASSETS_WEB_SECRET
in production)."""
MIN_KEY_BYTES = 32


class WebConfigError(ValueError):
    """The app cannot start with this configuration; the message names the setting."""


def web_port() -> int:
    return int(os.environ.get("NETFLIX_ASSETS_WEB_PORT", "18080"))


def edge_port() -> int:
    return int(os.environ.get("NETFLIX_ASSETS_EDGE_PORT", "19180"))


def edge_url() -> str:
    """Where players fetch media: the caching edge (a CDN's hostname in production)."""
    return os.environ.get("NETFLIX_ASSETS_EDGE_URL", f"http://{settings.HOST}:{edge_port()}")


@dataclass(frozen=True)
class WebConfig:
    signing_key: bytes
    postgres_dsn: str = field(default_factory=settings.postgres_dsn)
    object_store_root: str = field(default_factory=settings.object_store_root)
    edge_url: str = field(default_factory=edge_url)
    recs_url: str | None = field(
        default_factory=lambda: os.environ.get("NETFLIX_ASSETS_RECS_URL") or None
    )
    recs_api_key: str | None = field(
        default_factory=lambda: os.environ.get("NETFLIX_ASSETS_API_KEY") or None
    )
    playback_ttl_s: int = 4 * 3600
    """How long a signed playback URL stays valid: a long film plus pauses."""
    stream_lease_s: int = 90
    """A stream counts against the plan this long after its last keep-alive (sent every 30 s)."""
    secure_cookies: bool = field(
        default_factory=lambda: os.environ.get("NETFLIX_ASSETS_WEB_SECURE_COOKIES") == "1"
    )
    cdn: str = "local-edge"
    """The `cdn` field of the player's viewing events."""
    max_batch_bytes: int = 256 * 1024
    max_batch_events: int = 500

    def __post_init__(self) -> None:
        if len(self.signing_key) < MIN_KEY_BYTES:
            raise WebConfigError(
                f"the web signing key has {len(self.signing_key)} bytes; it needs at least "
                f"{MIN_KEY_BYTES} (set NETFLIX_ASSETS_WEB_SECRET to a long random string)"
            )
        if self.object_store_root.startswith("s3://"):
            raise WebConfigError(
                "the web app's origin serves a local object store; with "
                f"NETFLIX_ASSETS_OBJECT_STORE={self.object_store_root} put the CDN in front of "
                "the bucket and set NETFLIX_ASSETS_EDGE_URL to it"
            )


def signing_key_from_env() -> bytes | None:
    value = os.environ.get("NETFLIX_ASSETS_WEB_SECRET")
    return value.encode() if value else None
