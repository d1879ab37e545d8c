"""Signed playback URLs and the edge's key to the origin.

A playback token is `<payload>.<mac>`, both base64url: the payload names the path prefix it
opens (`delivery/<title>/<version>/`), the profile, the stream and the expiry (epoch seconds);
the mac is HMAC-SHA256 over the payload with the app's signing key. The token sits in the URL
path (`/t/<token>/delivery/...`), not in a query string, so the relative URIs inside the
playlists inherit it and every segment request carries it to the edge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

DELIVERY = "delivery/"
_DOMAIN = b"netflix-assets/playback/v1\n"


class PlaybackDenied(Exception):
    """A playback URL that must not be served: forged, expired, or for another path."""


@dataclass(frozen=True)
class PlaybackGrant:
    prefix: str
    profile_id: str
    stream_id: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, _DOMAIN + payload.encode(), hashlib.sha256).digest())


def sign(key: bytes, grant: PlaybackGrant) -> str:
    if not grant.prefix.startswith(DELIVERY) or not grant.prefix.endswith("/"):
        raise ValueError(f"a playback prefix is a delivery folder ending in '/': {grant.prefix!r}")
    fields = (grant.prefix, grant.profile_id, grant.stream_id, str(grant.expires_at))
    if any("\n" in f for f in fields):
        raise ValueError("playback grant fields may not hold a newline")
    payload = _b64("\n".join(fields).encode())
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, object_key: str, now: float | None = None) -> PlaybackGrant:
    """The grant of `token` when it opens `object_key` now, else PlaybackDenied naming why."""
    payload, dot, mac = token.partition(".")
    if not dot or not payload or not mac:
        raise PlaybackDenied("malformed playback token")
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise PlaybackDenied("playback token signature does not match (forged or altered)")
    try:
        prefix, profile_id, stream_id, expires = _unb64(payload).decode().split("\n")
        grant = PlaybackGrant(prefix, profile_id, stream_id, int(expires))
    except ValueError as exc:
        raise PlaybackDenied("malformed playback token") from exc
    if (now if now is not None else time.time()) >= grant.expires_at:
        raise PlaybackDenied(f"playback URL expired at {grant.expires_at} (epoch seconds)")
    if not object_key.startswith(grant.prefix) or ".." in object_key.split("/"):
        raise PlaybackDenied(f"this playback URL does not open {object_key!r}")
    return grant


def origin_key(key: bytes) -> str:
    """The header value the edge presents to the origin, derived from the signing key so the
    edge's config holds neither the key nor anything that signs playback URLs."""
    return _b64(hmac.new(key, b"netflix-assets/origin/v1", hashlib.sha256).digest())
