"""The origin: the object store's delivery area over HTTP, for the caching edge in front of it.

Only the edge may read it (it presents a key derived from the app's signing key), only keys
under delivery/ are served, and a key is checked (object_keys.check_key) before it touches the
file system, so '..' or an absolute path never leaves the area. Range requests are answered by
Starlette's FileResponse; the HTTP headers are the ones publishing recorded for each file
(long-lived for segments, short for playlists).
"""

from __future__ import annotations

import hmac
from pathlib import Path

from fastapi import HTTPException
from starlette.responses import FileResponse

from netflix_assets.object_keys import InvalidKey, check_key
from netflix_assets.video.publish import cache_control, content_type
from netflix_assets.web.tokens import DELIVERY


def serve(root: Path, key: str, presented: str | None, expected: str) -> FileResponse:
    if not presented or not hmac.compare_digest(presented, expected):
        raise HTTPException(403, "the origin answers the edge only")
    try:
        check_key(key)
    except InvalidKey as exc:
        raise HTTPException(400, str(exc)) from None
    if not key.startswith(DELIVERY):
        raise HTTPException(404, "the origin serves the delivery area only")
    path = (root / key).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise HTTPException(404, f"no object {key!r}")
    return FileResponse(
        path,
        media_type=content_type(key),
        headers={"Cache-Control": cache_control(key)},
    )
