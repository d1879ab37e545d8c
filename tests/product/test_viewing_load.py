"""The viewing-history load on the real PostgreSQL: Arrow columns sent as binary COPY come back
as the same values, a day's partition is built aside and swapped in (a re-load replaces it, a
bad load leaves the old day), and migration 0008 moves month-partitioned rows into days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import psycopg
import pyarrow as pa
import pytest

from netflix_assets.product import migrations, pgcopy, viewing
from netflix_assets.product.rules import RuleViolation

pytestmark = pytest.mark.stack
DAY = date(2026, 3, 14)
TYPES = ["text", "date", "timestamptz", "bigint", "boolean"]


def sessions(day: date, ids: list[str], profile: str = "p1") -> pa.Table:
    start = datetime.combine(day, datetime.min.time(), UTC)
    n = len(ids)
    return pa.table(
        {
            "session_id": ids,
            "session_date": [day] * n,
            "started_at": pa.array(
                [start + timedelta(minutes=k) for k in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "account_id": ["a1"] * n,
            "profile_id": [profile] * n,
            "title_id": ["t1"] * n,
            "device": ["tv"] * n,
            "country": [None] + ["US"] * (n - 1),
            "watched_ms": pa.array(range(n), pa.int64()),
            "completed": [k % 2 == 0 for k in range(n)],
        }
    )


def copy_back(dsn: str, table: pa.Table, fields: list[pgcopy.Field]) -> list[tuple]:
    columns = ", ".join(f"{f.name} {f.pg_type}" for f in fields)
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(f"CREATE TEMP TABLE back (k serial, {columns})")
        names = ", ".join(f.name for f in fields)
        with conn.cursor().copy(f"COPY back ({names}) FROM STDIN (FORMAT binary)") as copy:
            for block in pgcopy.stream(table, fields, batch_rows=3):
                copy.write(block)
        return conn.execute(f"SELECT {names} FROM back ORDER BY k").fetchall()


def test_arrow_values_come_back_from_a_binary_copy_unchanged(product_dsn: str) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    texts = ["plain", "", None, 'tab\tnew\nline\\ "q" ,', "ünïcødé ✓ 日本", "x" * 5000, "z"]
    dates = [
        date(1999, 12, 31),
        date(2000, 1, 1),
        None,
        date(2026, 3, 14),
        date(1970, 1, 1),
        date(2100, 2, 28),
        date(1, 1, 1),
    ]
    aware = [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        None,
        datetime(2026, 3, 14, 12, 0, 0, 123456, tzinfo=ist),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2262, 1, 1, tzinfo=UTC),
        datetime(1900, 6, 1, tzinfo=UTC),
    ]
    numbers = [0, -1, None, 2**63 - 1, -(2**63), 3_600_000, 42]
    flags = [True, False, None, True, False, True, False]
    table = pa.table(
        {
            "s": texts,
            "d": pa.array(dates, pa.date32()),
            "t": pa.array(aware, pa.timestamp("us", tz="Asia/Kolkata")),
            "naive": pa.array(
                [None if v is None else v.replace(tzinfo=None) for v in aware], pa.timestamp("ms")
            ),
            "n": pa.array(numbers, pa.int64()),
            "small": pa.array([None if v is None else v % 100 for v in numbers], pa.int16()),
            "b": flags,
        }
    )
    fields = [
        pgcopy.Field(name, kind)
        for name, kind in zip(
            table.schema.names,
            ["text", "date", "timestamptz", "timestamptz", "bigint", "bigint", "boolean"],
            strict=True,
        )
    ]
    rows = copy_back(product_dsn, table, fields)
    naive_ms = [
        None if v is None else v.replace(tzinfo=None, microsecond=v.microsecond // 1000 * 1000)
        for v in aware
    ]
    expected = list(
        zip(
            texts,
            dates,
            aware,
            [None if v is None else v.replace(tzinfo=UTC) for v in naive_ms],
            numbers,
            [None if v is None else v % 100 for v in numbers],
            flags,
            strict=True,
        )
    )
    assert rows == expected


def test_columns_that_cannot_be_sent_as_their_type_are_refused_naming_them() -> None:
    table = pa.table({"when": ["2026-01-01"], "ns": pa.array([1], pa.timestamp("ns"))})
    with pytest.raises(
        pgcopy.CopyEncodeError, match="'when': timestamptz wants an Arrow timestamp"
    ):
        pgcopy.encode(table, [pgcopy.Field("when", "timestamptz")])
    with pytest.raises(pgcopy.CopyEncodeError, match="'ns': timestamps finer than"):
        pgcopy.encode(table, [pgcopy.Field("ns", "timestamptz")])
    with pytest.raises(pgcopy.CopyEncodeError, match="columns missing for COPY: gone"):
        pgcopy.encode(table, [pgcopy.Field("gone", "text")])
    with pytest.raises(
        pgcopy.CopyEncodeError, match="no binary encoder for PostgreSQL type 'json'"
    ):
        pgcopy.Field("when", "json")


def day_rows(conn: psycopg.Connection, day: date) -> list[tuple]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return conn.execute(
        "SELECT session_id, watched_ms FROM product.viewing_history "
        "WHERE started_at >= %s AND started_at < %s ORDER BY session_id",
        (start, start + timedelta(days=1)),
    ).fetchall()


def test_a_day_is_swapped_in_whole_and_a_bad_load_leaves_the_old_day(product_dsn: str) -> None:
    with psycopg.connect(product_dsn) as conn:
        assert (
            viewing.load_day(
                conn, DAY - timedelta(days=1), sessions(DAY - timedelta(days=1), ["other"])
            )
            == 1
        )
    with psycopg.connect(product_dsn) as conn:
        assert viewing.load_day(conn, DAY, sessions(DAY, ["a", "b", "c"])) == 3
    with psycopg.connect(product_dsn) as conn:
        assert viewing.load_day(conn, DAY, sessions(DAY, ["d", "e"])) == 2  # replaces a, b, c
    with psycopg.connect(product_dsn) as conn:
        assert day_rows(conn, DAY) == [("d", 0), ("e", 1)]
        assert viewing.partitions(conn, "viewing_history_2026_03") == [
            "viewing_history_2026_03_13",
            "viewing_history_2026_03_14",
        ]
    with (
        pytest.raises(RuleViolation, match="viewing_history_day_bounds"),
        psycopg.connect(product_dsn) as conn,
    ):
        viewing.load_day(conn, DAY, sessions(DAY + timedelta(days=1), ["late"]))
    with pytest.raises(RuleViolation, match="is duplicated"), psycopg.connect(product_dsn) as conn:
        viewing.load_day(conn, DAY, sessions(DAY, ["f"]).take([0, 0]))
    with (
        pytest.raises(pgcopy.CopyEncodeError, match="'watched_ms'"),
        psycopg.connect(product_dsn) as conn,
    ):
        bad = sessions(DAY, ["g"])
        viewing.load_day(conn, DAY, bad.set_column(8, "watched_ms", pa.array(["1"])))
    with psycopg.connect(product_dsn) as conn:
        assert day_rows(conn, DAY) == [("d", 0), ("e", 1)]
        assert day_rows(conn, DAY - timedelta(days=1)) == [("other", 0)]
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'viewing_history_%_load'"
            ).fetchone()[0]
            == 0
        )


def test_migration_0008_moves_month_partitioned_rows_into_days(fresh_dsn: str) -> None:
    dsn = fresh_dsn
    splitting = next(m for m in migrations.discover() if m.name == "viewing_history_day_partitions")
    migrations.migrate(dsn, [m for m in migrations.discover() if m.version < splitting.version])
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE product.viewing_history_2026_01 PARTITION OF product.viewing_history"
            " FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2026-02-01 00:00+00')"
        )
        conn.execute(
            "CREATE TABLE product.viewing_history_2026_02 PARTITION OF product.viewing_history"
            " FOR VALUES FROM ('2026-02-01 00:00+00') TO ('2026-03-01 00:00+00')"
        )
        conn.execute(
            "INSERT INTO product.viewing_history SELECT 's' || n, '2026-01-30', "
            "'2026-01-30 00:00+00'::timestamptz + n * interval '1 hour', 'a', 'p' || n % 3, "
            "'t', 'tv', NULL, n, n % 2 = 0 FROM generate_series(1, 60) n"
        )
        before = conn.execute(
            "SELECT * FROM product.viewing_history ORDER BY session_id"
        ).fetchall()
    assert migrations.migrate(dsn) == [
        m.filename for m in migrations.discover() if m.version >= splitting.version
    ]
    with psycopg.connect(dsn) as conn:
        assert (
            conn.execute("SELECT * FROM product.viewing_history ORDER BY session_id").fetchall()
            == before
        )
        assert viewing.partitions(conn) == [
            "viewing_history_2026_01",
            "viewing_history_2026_02",
        ]
        assert viewing.partitions(conn, "viewing_history_2026_01") == [
            f"viewing_history_2026_01_{d}" for d in (30, 31)
        ]
        assert viewing.partitions(conn, "viewing_history_2026_02") == ["viewing_history_2026_02_01"]
        assert (
            conn.execute("SELECT sum(sessions) FROM product.profile_engagement").fetchone()[0] == 60
        )
        collation = conn.execute(
            "SELECT collation_name FROM information_schema.columns WHERE table_schema = "
            "'product' AND table_name = 'viewing_history' AND column_name = 'profile_id'"
        ).fetchone()[0]
    assert collation == "C"
    assert migrations.migrate(dsn) == []
