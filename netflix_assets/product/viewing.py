"""product.viewing_history: month partitions created ahead, each split into day partitions, and
a day's sessions loaded by building the day's partition aside and swapping it in (idempotent
per day).

Why a day partition is built aside: COPY into a month partition that already holds other days
maintains two text b-trees row by row (33k rows/s at 2 cores); a table created in the same
transaction takes `COPY FREEZE` without indexes (and without WAL under wal_level=minimal), its
indexes are then built by one sort each, and ATTACH PARTITION skips its scan because the
table's CHECK constraint already proves the bounds. docs/PRODUCT.md, "Speed", has the figures."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from netflix_assets.product import pgcopy
from netflix_assets.product.billing import day_bounds
from netflix_assets.product.rules import named_rules

FIELDS = (
    pgcopy.Field("session_id", "text"),
    pgcopy.Field("session_date", "date"),
    pgcopy.Field("started_at", "timestamptz"),
    pgcopy.Field("account_id", "text"),
    pgcopy.Field("profile_id", "text"),
    pgcopy.Field("title_id", "text"),
    pgcopy.Field("device", "text"),
    pgcopy.Field("country", "text"),
    pgcopy.Field("watched_ms", "bigint"),
    pgcopy.Field("completed", "boolean"),
)
"""viewing_history's columns in COPY order and the PostgreSQL type each is sent as; the asset
renames silver_playback_sessions' columns to these (user_id is the account, session_start the
start)."""
COLUMNS = tuple(field.name for field in FIELDS)
SILVER_COLUMNS = (
    "session_id",
    "session_date",
    "session_start",
    "user_id",
    "profile_id",
    "title_id",
    "device",
    "country",
    "watched_ms",
    "completed",
)
"""silver_playback_sessions' columns that become FIELDS, in the same order."""
LOAD_MAINTENANCE_WORK_MEM = "256MB"
"""Enough to sort a day's index keys in memory (a 10M-row, 90-day load has 111k rows a day)."""


def from_silver(silver: pa.Table) -> pa.Table:
    """A day of silver_playback_sessions (SILVER_COLUMNS) as load_day's FIELDS: a session
    without watched time counts 0 ms, one without a completed flag as not completed."""
    renamed = silver.select(list(SILVER_COLUMNS)).rename_columns(list(COLUMNS))
    for name, default in (("watched_ms", 0), ("completed", False)):
        index = COLUMNS.index(name)
        renamed = renamed.set_column(index, name, pc.fill_null(renamed.column(index), default))
    return renamed


def month_start(day: date, months_after: int = 0) -> date:
    month = day.month - 1 + months_after
    return date(day.year + month // 12, month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"viewing_history_{month:%Y_%m}"


def day_partition_name(day: date) -> str:
    return f"viewing_history_{day:%Y_%m_%d}"


def _bounds(first: date, after: date) -> sql.Composable:
    return sql.SQL("FROM ({}) TO ({})").format(
        sql.Literal(f"{first.isoformat()} 00:00:00+00"),
        sql.Literal(f"{after.isoformat()} 00:00:00+00"),
    )


def ensure_partitions(conn: psycopg.Connection, day: date, months_ahead: int = 2) -> list[str]:
    """Create the month partitions (each partitioned by day in turn; load_day adds the days)
    from `day`'s month to `months_ahead` months later that do not exist yet; returns the ones
    created. Safe to run concurrently with loads (an existing partition is left alone)."""
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
                "FOR VALUES {} PARTITION BY RANGE (started_at)"
            ).format(sql.Identifier(name), _bounds(first, month_start(day, offset + 1)))
        )
        created.append(name)
    return created


def partitions(conn: psycopg.Connection, parent: str = "viewing_history") -> list[str]:
    """The partitions directly under `parent`: the months of viewing_history, or the days of
    a month partition."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1",
            (f"product.{parent}",),
        )
    ]


def load_day(conn: psycopg.Connection, day: date, sessions: pa.Table) -> int:
    """Replace the day's rows by `sessions` (an Arrow table with the FIELDS columns) inside the
    caller's transaction; returns how many were copied. The new day partition is built aside,
    then the old one, if any, is dropped and the new one attached, so readers see the old day
    or the new one, never half of it. Creates the month partition when it is missing.

    A session that did not start on `day` is refused (`viewing_history_day_bounds`), as is a
    session id repeated within the day (`viewing_history_<day>_pkey`), as RuleViolation."""
    start, end = day_bounds(day)
    name = day_partition_name(day)
    building = f"{name}_load"
    month = partition_name(month_start(day))
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"viewing_history:{day}",))
    # The load is idempotent: a crash losing its commit is mended by re-running the day, so
    # it need not wait for the WAL flush.
    conn.execute("SET LOCAL synchronous_commit = off")
    conn.execute(
        sql.SQL("SET LOCAL maintenance_work_mem = {}").format(
            sql.Literal(LOAD_MAINTENANCE_WORK_MEM)
        )
    )
    ensure_partitions(conn, day, months_ahead=0)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS product.{}").format(sql.Identifier(building)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE product.{} (LIKE product.viewing_history INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS, CONSTRAINT viewing_history_day_bounds "
            "CHECK (started_at >= {} AND started_at < {}))"
        ).format(sql.Identifier(building), sql.Literal(start), sql.Literal(end))
    )
    statement = sql.SQL("COPY product.{} ({}) FROM STDIN (FORMAT binary, FREEZE)").format(
        sql.Identifier(building), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    with named_rules():
        with conn.cursor().copy(statement) as copy:
            for block in pgcopy.stream(sessions, FIELDS):
                copy.write(block)
        conn.execute(
            sql.SQL(
                "ALTER TABLE product.{} ADD CONSTRAINT {} PRIMARY KEY (session_id, started_at)"
            ).format(sql.Identifier(building), sql.Identifier(f"{building}_pkey"))
        )
    conn.execute(
        sql.SQL("CREATE INDEX {} ON product.{} (profile_id, started_at DESC)").format(
            sql.Identifier(f"{building}_profile_recent"), sql.Identifier(building)
        )
    )
    # The month first, so a reader (month, then its days) and this swap (old day, then month)
    # cannot deadlock; held until commit, a few milliseconds.
    conn.execute(
        sql.SQL("LOCK TABLE product.{} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(month))
    )
    conn.execute(sql.SQL("DROP TABLE IF EXISTS product.{}").format(sql.Identifier(name)))
    conn.execute(
        sql.SQL("ALTER TABLE product.{} RENAME TO {}").format(
            sql.Identifier(building), sql.Identifier(name)
        )
    )
    for suffix in ("pkey", "profile_recent"):  # renaming the key's index renames the key
        conn.execute(
            sql.SQL("ALTER INDEX product.{} RENAME TO {}").format(
                sql.Identifier(f"{building}_{suffix}"), sql.Identifier(f"{name}_{suffix}")
            )
        )
    conn.execute(
        sql.SQL("ALTER TABLE product.{} ATTACH PARTITION product.{} FOR VALUES {}").format(
            sql.Identifier(month), sql.Identifier(name), _bounds(day, day + timedelta(days=1))
        )
    )
    return sessions.num_rows


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
