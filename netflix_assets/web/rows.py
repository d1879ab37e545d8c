"""The home page's rows: continue watching, recommended for you, top in your country.

Each row says where it came from; a source that cannot answer (no recommendation service
configured, no lake yet) gives an empty row with the reason instead of failing the page.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
import psycopg
import pyarrow.dataset as ds
from deltalake import DeltaTable

TOP_DAYS = 7
TOP_CACHE_S = 60.0


@dataclass
class Row:
    name: str
    title_ids: list[str] = field(default_factory=list)
    note: str | None = None


def continue_watching(conn: psycopg.Connection, profile_id: str, limit: int = 10) -> Row:
    """Titles this profile started and did not finish, most recent first (viewing history)."""
    rows = conn.execute(
        "SELECT title_id FROM (SELECT DISTINCT ON (title_id) title_id, started_at, completed "
        "FROM product.viewing_history WHERE profile_id = %s "
        "ORDER BY title_id, started_at DESC) last WHERE NOT completed "
        "ORDER BY started_at DESC LIMIT %s",
        (profile_id, limit),
    ).fetchall()
    return Row("Continue watching", [r[0] for r in rows])


def recommended(
    client: httpx.Client, base_url: str | None, api_key: str | None, user_id: str, k: int = 20
) -> Row:
    """The recommendation service's list for the account (its models know accounts as users)."""
    row = Row("Recommended for you")
    if not base_url:
        row.note = "no recommendation service configured (NETFLIX_ASSETS_RECS_URL)"
        return row
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        response = client.get(
            f"{base_url.rstrip('/')}/v1/recommendations/{user_id}",
            params={"k": k},
            headers=headers,
        )
        response.raise_for_status()
        row.title_ids = [item["title_id"] for item in response.json()["items"]]
    except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
        row.note = f"recommendations unavailable ({type(exc).__name__})"
    return row


class TopInCountry:
    """Most-started titles per country over the lake's last TOP_DAYS session dates, read with
    delta-rs (no JVM) from gold_title_country_daily (starts per title, viewer country and day).
    Cached per country for TOP_CACHE_S."""

    def __init__(self, table_uri: str) -> None:
        self.table_uri = table_uri
        self._cache: dict[str, tuple[float, Row]] = {}
        self._lock = threading.Lock()

    def __call__(self, country: str, limit: int = 10) -> Row:
        with self._lock:
            hit = self._cache.get(country)
            if hit and time.monotonic() - hit[0] < TOP_CACHE_S:
                return hit[1]
        row = self._compute(country, limit)
        with self._lock:
            self._cache[country] = (time.monotonic(), row)
        return row

    def _compute(self, country: str, limit: int) -> Row:
        row = Row(f"Top {limit} in {country}")
        if not DeltaTable.is_deltatable(self.table_uri):
            row.note = "the lake has no gold_title_country_daily table yet"
            return row
        dataset = DeltaTable(self.table_uri).to_pyarrow_dataset()
        since = date.today() - timedelta(days=TOP_DAYS)
        table = dataset.to_table(
            columns=["title_id", "starts"],
            filter=(ds.field("session_date") >= since)
            & (ds.field("country") == country)
            & (ds.field("starts") > 0),
        )
        if table.num_rows == 0:
            row.note = f"no starts in {country} in the last {TOP_DAYS} days"
            return row
        totals = table.group_by("title_id").aggregate([("starts", "sum")])
        ranked = sorted(
            zip(totals["title_id"].to_pylist(), totals["starts_sum"].to_pylist(), strict=True),
            key=lambda title_starts: (-title_starts[1], title_starts[0]),
        )
        row.title_ids = [title_id for title_id, _ in ranked[:limit]]
        return row
