"""Published titles as a profile may see them, and the master playlist a browser may play.

The app never hands a player the published master as is: it offers only the variants whose
CODECS the browser reported playable (`MediaSource.isTypeSupported`; Chromium here plays no HEVC)
and that the plan's resolution allows, with every URI made absolute through the edge and
carrying the stream's signed token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import m3u8
import psycopg

from netflix_assets.object_keys import check_key
from netflix_assets.web.tokens import DELIVERY
from netflix_assets.web.viewers import MATURITY_RATINGS

MASTER = "master.m3u8"


class NothingPlayable(Exception):
    """No variant of the title fits both the browser and the plan; the message lists them."""


@dataclass(frozen=True)
class Title:
    title_id: str
    title: str
    maturity_rating: str
    release_year: int | None
    runtime_minutes: int | None
    version: str
    duration_s: float | None
    codecs: tuple[str, ...]

    @property
    def prefix(self) -> str:
        return f"{DELIVERY}{self.title_id}/{self.version}/"


_TITLES = """
SELECT t.title_id, t.title, t.maturity_rating, t.release_year, t.runtime_minutes, v.version,
       (SELECT duration_s FROM catalog.manifests m
         WHERE m.title_id = v.title_id AND m.version = v.version AND m.kind = 'hls'),
       coalesce((SELECT array_agg(DISTINCT r.codecs_string ORDER BY r.codecs_string)
                   FROM catalog.renditions r
                  WHERE r.title_id = v.title_id AND r.version = v.version
                    AND r.codecs_string IS NOT NULL), '{}')
FROM catalog.titles t
JOIN LATERAL (SELECT version, title_id FROM catalog.title_versions tv
              WHERE tv.title_id = t.title_id ORDER BY published_at DESC LIMIT 1) v ON true
WHERE t.status = 'published' AND t.maturity_rating = ANY(%(ratings)s)
"""


def _title(row: tuple) -> Title:
    return Title(*row[:7], tuple(row[7]))


def titles(conn: psycopg.Connection, maturity_level: str, limit: int = 40) -> list[Title]:
    """Published titles this maturity level may watch, newest first."""
    rows = conn.execute(
        _TITLES + " ORDER BY t.updated_at DESC, t.title_id LIMIT %(limit)s",
        {"ratings": list(MATURITY_RATINGS[maturity_level]), "limit": limit},
    ).fetchall()
    return [_title(r) for r in rows]


def title(conn: psycopg.Connection, title_id: str, maturity_level: str) -> Title | None:
    row = conn.execute(
        _TITLES + " AND t.title_id = %(title_id)s",
        {"ratings": list(MATURITY_RATINGS[maturity_level]), "title_id": title_id},
    ).fetchone()
    return _title(row) if row else None


def titles_by_id(
    conn: psycopg.Connection, title_ids: list[str], maturity_level: str
) -> dict[str, Title]:
    if not title_ids:
        return {}
    rows = conn.execute(
        _TITLES + " AND t.title_id = ANY(%(ids)s)",
        {"ratings": list(MATURITY_RATINGS[maturity_level]), "ids": title_ids},
    ).fetchall()
    return {r[0]: _title(r) for r in rows}


def exists(conn: psycopg.Connection, title_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM catalog.titles WHERE title_id = %s AND status = 'published'", (title_id,)
    ).fetchone()
    return row is not None


def _master(store_root: Path, title: Title) -> m3u8.M3U8:
    return m3u8.loads((store_root / check_key(title.prefix + MASTER)).read_text())


def variant_codecs(store_root: Path, title: Title) -> list[str]:
    """The CODECS of each variant in the published master (video and audio together, as the
    browser's MediaSource.isTypeSupported must judge them)."""
    found = (v.stream_info.codecs for v in _master(store_root, title).playlists)
    return sorted({c for c in found if c})


def playable_master(
    store_root: Path,
    title: Title,
    supported_codecs: set[str],
    max_height: int,
    media_base: str,
) -> str:
    """The title's master playlist with only the variants the browser and plan allow, every
    URI absolute under `media_base` (`<edge>/t/<token>/`)."""
    playlist = _master(store_root, title)
    kept, refused = [], []
    for variant in playlist.playlists:
        info = variant.stream_info
        height = info.resolution[1] if info.resolution else 0
        if info.codecs in supported_codecs and height <= max_height:
            kept.append(variant)
        else:
            refused.append(f"{variant.uri} ({info.codecs}, {height}p)")
    if not kept:
        raise NothingPlayable(
            f"none of the renditions of {title.title_id!r} plays here: "
            f"{', '.join(refused) or 'the title has none'}; this browser plays "
            f"{sorted(supported_codecs) or 'none of its codecs'} up to {max_height}p"
        )
    playlist.playlists[:] = kept
    base = media_base + title.prefix
    for variant in kept:
        variant.uri = base + check_key(variant.uri)
    for media in playlist.media:
        if media.uri:
            media.uri = base + check_key(media.uri)
    return playlist.dumps()
