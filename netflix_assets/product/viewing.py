"""product.viewing_history: monthly partitions created ahead, and a day's sessions loaded with
COPY (delete the day, copy it again, in one transaction: idempotent per day)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import psycopg
from psycopg import sql

from netflix_assets.product.billing import day_bounds

COLUMNS = (
    "session_id",
    "session_date",
    "started_at",
    "account_id",
    "profile_id",
    "title_id",
    "device",
    "country",
    "watched_ms",
    "completed",
)
"""viewing_history's columns in COPY order; silver_playback_sessions supplies them (user_id is
the account, session_start the start)."""


def month_start(day: date, months_after: int = 0) -> date:
    month = day.month - 1 + months_after
    return date(day.year + month // 12, month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"viewing_history_{month:%Y_%m}"


def ensure_partitions(conn: psycopg.Connection, day: date, months_ahead: int = 2) -> list[str]:
    """Create the month partitions from `day`'s month to `months_ahead` months later that do not
    exist yet; returns the ones created. Safe to run concurrently with loads (an existing
    partition is left alone)."""
    created = []
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    for offset in range(months_ahead + 1):
        first = month_start(day, offset)
        name = partition_name(first)
        exists = conn.execute("SELECT to_regclass(%s)", (f"product.{name}",)).fetchone()[0]
        if exists:
            continue
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS product.{} PARTITION OF product.viewing_history "
                "FOR VALUES FROM ({}) TO ({})"
            ).format(
                sql.Identifier(name),
                sql.Literal(f"{first.isoformat()} 00:00:00+00"),
                sql.Literal(f"{month_start(day, offset + 1).isoformat()} 00:00:00+00"),
            )
        )
        created.append(name)
    return created


def partitions(conn: psycopg.Connection) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'product.viewing_history'::regclass ORDER BY 1"
        )
    ]


def load_day(conn: psycopg.Connection, day: date, rows: Iterable[Sequence]) -> int:
    """Replace the day's rows by `rows` (tuples in COLUMNS order) inside the caller's
    transaction; returns how many were copied. The day's month partition must exist
    (ensure_partitions), otherwise PostgreSQL refuses the rows and nothing is written."""
    start, end = day_bounds(day)
    conn.execute(
        "DELETE FROM product.viewing_history WHERE started_at >= %s AND started_at < %s",
        (start, end),
    )
    copied = 0
    statement = sql.SQL("COPY product.viewing_history ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            copied += 1
    return copied


def day_count(conn: psycopg.Connection, day: date) -> int:
    start, end = day_bounds(day)
    return conn.execute(
        "SELECT count(*) FROM product.viewing_history WHERE started_at >= %s AND started_at < %s",
        (start, end),
    ).fetchone()[0]


def last_views_sql() -> str:
    """A profile's last 50 views (the query benchmarked and EXPLAINed in the tests)."""
    return (
        "SELECT title_id, started_at, watched_ms FROM product.viewing_history "
        "WHERE profile_id = %s AND started_at >= %s ORDER BY started_at DESC LIMIT 50"
    )
