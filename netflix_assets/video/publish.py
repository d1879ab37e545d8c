"""Publishing a packaged title: HTTP headers per file, the copy order, the catalog rows.

The order is what keeps a half-copied title invisible: segments and init files first, then the
media playlists that point at them, and the master playlist and MPD last. A player that finds the
master finds everything beneath it; a crash before the end leaves no master and no catalog row.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".json": "application/json",
}
IMMUTABLE = "public, max-age=31536000, immutable"
"""Segments never change under a versioned path, so CDNs and players may keep them for a year."""
MANIFEST_CACHE = "public, max-age=300"
"""Playlists are small and are what an operator would fix in place, so they expire sooner."""


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(key).suffix, "application/octet-stream")


def cache_control(key: str) -> str:
    return MANIFEST_CACHE if PurePosixPath(key).suffix in (".m3u8", ".mpd") else IMMUTABLE


def publish_order(relative_keys: list[str], master: str, mpd: str) -> list[str]:
    """Media first, then rung playlists, then the MPD and master last."""
    tops = {master, mpd}
    media = sorted(k for k in relative_keys if not k.endswith((".m3u8", ".mpd")))
    playlists = sorted(k for k in relative_keys if k.endswith(".m3u8") and k not in tops)
    return [*media, *playlists, *(k for k in (mpd, master) if k in relative_keys)]


UPSERT_TITLE = """
INSERT INTO catalog.titles (title_id, title, status) VALUES (%(title_id)s, %(title)s, 'published')
ON CONFLICT (title_id) DO UPDATE SET title = EXCLUDED.title, status = 'published',
    updated_at = now()
"""
UPSERT_VERSION = """
INSERT INTO catalog.title_versions
    (title_id, version, source_sha256, playback_url, manifest_uri, dash_uri)
VALUES (%(title_id)s, %(version)s, %(sha256)s, %(playback_url)s, %(manifest_uri)s, %(dash_uri)s)
ON CONFLICT (title_id, version) DO UPDATE SET playback_url = EXCLUDED.playback_url,
    manifest_uri = EXCLUDED.manifest_uri, dash_uri = EXCLUDED.dash_uri
"""
UPSERT_RENDITION = """
INSERT INTO catalog.renditions (title_id, version, rung, codec, width, height, bitrate_kbps,
    peak_kbps, avg_kbps, codecs_string, uri)
VALUES (%(title_id)s, %(version)s, %(rung)s, %(codec)s, %(width)s, %(height)s, %(bitrate_kbps)s,
    %(peak_kbps)s, %(avg_kbps)s, %(codecs_string)s, %(uri)s)
ON CONFLICT (title_id, version, rung) DO UPDATE SET codec = EXCLUDED.codec,
    width = EXCLUDED.width, height = EXCLUDED.height, bitrate_kbps = EXCLUDED.bitrate_kbps,
    peak_kbps = EXCLUDED.peak_kbps, avg_kbps = EXCLUDED.avg_kbps,
    codecs_string = EXCLUDED.codecs_string, uri = EXCLUDED.uri
"""
UPSERT_MANIFEST = """
INSERT INTO catalog.manifests (title_id, version, kind, uri, content_type, variant_count,
    duration_s)
VALUES (%(title_id)s, %(version)s, %(kind)s, %(uri)s, %(content_type)s, %(variant_count)s,
    %(duration_s)s)
ON CONFLICT (title_id, version, kind) DO UPDATE SET uri = EXCLUDED.uri,
    content_type = EXCLUDED.content_type, variant_count = EXCLUDED.variant_count,
    duration_s = EXCLUDED.duration_s
"""
UPSERT_QUALITY = """
INSERT INTO catalog.quality (title_id, version, rung, vmaf_mean, vmaf_harmonic, vmaf_p1, vmaf_min,
    psnr, ssim)
VALUES (%(title_id)s, %(version)s, %(rung)s, %(vmaf_mean)s, %(vmaf_harmonic)s, %(vmaf_p1)s,
    %(vmaf_min)s, %(psnr)s, %(ssim)s)
ON CONFLICT (title_id, version, rung) DO UPDATE SET vmaf_mean = EXCLUDED.vmaf_mean,
    vmaf_harmonic = EXCLUDED.vmaf_harmonic, vmaf_p1 = EXCLUDED.vmaf_p1,
    vmaf_min = EXCLUDED.vmaf_min, psnr = EXCLUDED.psnr, ssim = EXCLUDED.ssim
"""


def write_catalog(
    conn: Any,
    title: dict[str, Any],
    renditions: list[dict[str, Any]],
    manifests: list[dict[str, Any]],
    quality: list[dict[str, Any]],
) -> None:
    """Upsert one published version in the caller's transaction (PostgresResource.connect()),
    so the catalog holds all of it or none of it, and re-publishing changes nothing."""
    with conn.cursor() as cur:
        cur.execute(UPSERT_TITLE, title)
        cur.execute(UPSERT_VERSION, title)
        cur.executemany(UPSERT_RENDITION, [{**title, **r} for r in renditions])
        cur.executemany(UPSERT_MANIFEST, [{**title, **m} for m in manifests])
        cur.executemany(UPSERT_QUALITY, [{**title, **q} for q in quality])


PUBLISHED_VERSIONS = """
SELECT title_id, version FROM catalog.title_versions
WHERE (title_id, version) IN (SELECT * FROM unnest(%(titles)s::text[], %(versions)s::text[]))
"""


def published_versions(conn: Any, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (title id, version) pairs the catalog already has published. A database
    without the catalog yet has published nothing."""
    if not wanted:
        return set()
    titles, versions = (list(column) for column in zip(*sorted(wanted), strict=True))
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('catalog.title_versions')")
        if cur.fetchone()[0] is None:
            return set()
        cur.execute(PUBLISHED_VERSIONS, {"titles": titles, "versions": versions})
        return {(title_id, version) for title_id, version in cur.fetchall()}
