"""Product database figures on the local stack's PostgreSQL, in a scratch database made and
dropped by the run:

- viewing-history load: rows/s of `viewing.load_day` (what the viewing_history asset runs: the
  day's Arrow columns as binary COPY into a day partition built aside, its two indexes, the
  swap) over DAYS days at each size, and the WAL it wrote; against a baseline measured in the
  same run on a sample of the same days: PostgreSQL's own intake, the same bytes pre-encoded
  and copied into a bare table made in the same transaction (no indexes, no swap);
- with --anatomy, where a day's load time goes: Python tuples through psycopg's write_row,
  text COPY into a month table that already holds other days (the previous loader), and
  the binary COPY and each index of the present one, timed apart;
- "a profile's last 50 views" (the indexed, partition-pruned query): p50/p99 over random
  profiles, and the partitions in the EXPLAIN;
- REFRESH MATERIALIZED VIEW CONCURRENTLY of the two viewing views over the loaded rows;
- billing_run's core for a day over N subscriptions whose renewals are spread over a 30-day
  cycle (a normal day: ~N/30 renewals), and for M subscriptions all renewing that day (the
  worst day).

    .venv/bin/python benchmarks/product_bench.py --rows 1000000 5000000 10000000 \
        --subscriptions 1000000 --same-day 1000000
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from netflix_assets.product import billing, migrations, pgcopy, viewing, views
from resources.postgres import PostgresResource

FIRST_DAY = date(2026, 1, 1)
DAYS = 90
BASELINE_EVERY = 10  # every 10th day is also copied raw, for the baseline


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def scratch(base: str) -> tuple[str, str]:
    name = f"product_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(base)
    params["dbname"] = name
    return name, make_conninfo(**params)


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def day_sessions(day: date, count: int, profiles: int, seed: int) -> pa.Table:
    """A day of sessions shaped like silver's: random profiles (3 per account), Pareto-popular
    titles, starts spread over the day. Built by numpy/Arrow so that 10M rows take seconds."""
    rng = np.random.default_rng(seed)
    profile = rng.integers(0, profiles, count)
    offsets = rng.integers(0, 86_400_000_000, count).astype("timedelta64[us]")
    return pa.table(
        {
            "session_id": _ids(f"{day:%Y%m%d}-", np.arange(count)),
            "session_date": pa.array(np.full(count, np.datetime64(day.isoformat(), "D"))),
            "started_at": pa.array(np.datetime64(day.isoformat(), "us") + offsets).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "account_id": _ids("a", profile // 3),
            "profile_id": _ids("p", profile),
            "title_id": _ids("t", (rng.pareto(1.2, count) * 10).astype(np.int64) % 5000),
            "device": pa.array(np.full(count, "tv")),
            "country": pa.array(np.full(count, "US")),
            "watched_ms": pa.array(rng.integers(0, 3_600_000, count)),
            "completed": pa.array(rng.random(count) < 0.3),
        }
    )


def wal_bytes(conn: psycopg.Connection, since: str | None = None) -> tuple[str, int]:
    lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    if since is None:
        return lsn, 0
    return lsn, conn.execute("SELECT pg_wal_lsn_diff(%s, %s)::bigint", (lsn, since)).fetchone()[0]


def raw_copy(dsn: str, blocks: list[bytes]) -> float:
    """PostgreSQL's intake of pre-encoded rows: COPY FREEZE into a bare table made in the same
    transaction (each connection its own), rolled back (the baseline)."""
    table = sql.Identifier(f"bench_raw_{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute(
            sql.SQL("CREATE TABLE product.{} (LIKE product.viewing_history)").format(table)
        )
        statement = sql.SQL("COPY product.{} ({}) FROM STDIN (FORMAT binary, FREEZE)").format(
            table, sql.SQL(", ").join(map(sql.Identifier, viewing.COLUMNS))
        )
        with conn.cursor().copy(statement) as copy:
            for block in blocks:
                copy.write(block)
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def load(dsn: str, total: int, profiles: int, workers: int = 1) -> dict:
    """Load `total` rows over DAYS days through load_day, `workers` days at once, each on its
    own connection (as a backfill of the viewing_history asset does when the run queue runs
    that many day partitions at a time). The days are generated ahead; the rate is over the
    wall time of all loads. Every BASELINE_EVERY-th day is also copied raw for the baseline."""
    per_day = total // DAYS
    with psycopg.connect(dsn) as conn:
        viewing.ensure_partitions(conn, FIRST_DAY, months_ahead=3)
        start_lsn, _ = wal_bytes(conn)
    day_seconds = [0.0] * DAYS

    def load_one(d: int, sessions: pa.Table) -> None:
        started = time.perf_counter()
        with psycopg.connect(dsn) as conn:
            viewing.load_day(conn, FIRST_DAY + timedelta(days=d), sessions)
        day_seconds[d] = time.perf_counter() - started

    days = [
        day_sessions(FIRST_DAY + timedelta(days=d), per_day, profiles, seed=d) for d in range(DAYS)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(load_one, range(DAYS), days))
    wall = time.perf_counter() - started
    del days
    # The baseline copies every BASELINE_EVERY-th day raw, as many at once as the load did.
    sampled = [
        [
            bytes(b)
            for b in pgcopy.stream(
                day_sessions(FIRST_DAY + timedelta(days=d), per_day, profiles, seed=d),
                viewing.FIELDS,
            )
        ]
        for d in range(0, DAYS, BASELINE_EVERY)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda blocks: raw_copy(dsn, blocks), sampled))
    raw = [per_day * len(sampled), time.perf_counter() - started]
    with psycopg.connect(dsn) as conn:
        _, wal = wal_bytes(conn, start_lsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE product.viewing_history")
    tenth = DAYS // 10
    return {
        "rows": per_day * DAYS,
        "seconds": wall,
        "rate": per_day * DAYS / wall,
        "raw_rate": raw[0] / raw[1],
        "first_days_s": statistics.mean(day_seconds[:tenth]),
        "last_days_s": statistics.mean(day_seconds[-tenth:]),
        "wal_mb": wal / 2**20,
    }


def anatomy(dsn: str, rows: int, profiles: int) -> dict[str, float]:
    """Where a day's load time goes: each way timed on the same `rows` sessions, rolled back.
    Rates in rows/s; index builds in seconds."""
    sessions = day_sessions(FIRST_DAY + timedelta(days=DAYS + 5), rows, profiles, seed=99)
    names = sql.SQL(", ").join(map(sql.Identifier, viewing.COLUMNS))
    bare = "CREATE TABLE product.bench_day (LIKE product.viewing_history INCLUDING CONSTRAINTS)"
    with psycopg.connect(dsn) as conn:  # the previous loader's target: an indexed table that
        conn.execute(  # already holds ten days, made in an earlier transaction
            "CREATE TABLE product.bench_month (LIKE product.viewing_history INCLUDING ALL)"
        )
        conn.execute(
            "INSERT INTO product.bench_month SELECT * FROM product.viewing_history "
            "WHERE started_at >= %s AND started_at < %s",
            (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC)),
        )
    out: dict[str, float] = {}

    def copy(conn: psycopg.Connection, table: str, how: str) -> float:
        started = time.perf_counter()
        if how == "tuples":
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.SQL(table), names)
            with conn.cursor().copy(statement) as stream:
                columns = (sessions.column(n).to_pylist() for n in viewing.COLUMNS)
                for row in zip(*columns, strict=True):
                    stream.write_row(row)
        else:
            options = "FORMAT binary, FREEZE" if how == "freeze" else "FORMAT binary"
            statement = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
                sql.SQL(table), names, sql.SQL(options)
            )
            with conn.cursor().copy(statement) as stream:
                for block in pgcopy.stream(sessions, viewing.FIELDS):
                    stream.write(block)
        return rows / (time.perf_counter() - started)

    try:
        with psycopg.connect(dsn) as conn:
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute(bare)
            out["Python tuples, write_row text COPY, bare new table"] = copy(
                conn, "product.bench_day", "tuples"
            )
            conn.rollback()
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            conn.execute(bare)
            out["Arrow binary COPY FREEZE, bare new table"] = copy(
                conn, "product.bench_day", "freeze"
            )
            for label, statement in (
                ("primary key build, s", "ADD PRIMARY KEY (session_id, started_at)"),
                ("profile index build, s", None),
            ):
                started = time.perf_counter()
                conn.execute(
                    f"ALTER TABLE product.bench_day {statement}"
                    if statement
                    else "CREATE INDEX ON product.bench_day (profile_id, started_at DESC)"
                )
                out[label] = time.perf_counter() - started
            conn.rollback()
            conn.execute("SET LOCAL synchronous_commit = off")
            out["Arrow binary COPY into the indexed table holding 10 days"] = copy(
                conn, "product.bench_month", "binary"
            )
            conn.rollback()
    finally:
        with psycopg.connect(dsn) as conn:
            conn.execute("DROP TABLE product.bench_month")
    return out


def last_views(dsn: str, profiles: int, queries: int) -> dict:
    rng = random.Random(2)
    # the last 30 days of the 90 loaded: the plan must skip January and February
    since = datetime.combine(FIRST_DAY + timedelta(days=DAYS - 30), datetime.min.time(), UTC)
    times = []
    with psycopg.connect(dsn) as conn:
        plan = "\n".join(
            r[0] for r in conn.execute("EXPLAIN " + viewing.last_views_sql(), ("p1", since))
        )
        for _ in range(queries):
            profile = f"p{rng.randrange(profiles)}"
            started = time.perf_counter()
            conn.execute(viewing.last_views_sql(), (profile, since), prepare=True).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        # the server's own time for the same query (planning + execution, from EXPLAIN
        # ANALYZE), which a busy host's scheduling of the client does not add to
        server = []
        for _ in range(queries // 4):
            profile = f"p{rng.randrange(profiles)}"
            lines = [
                r[0]
                for r in conn.execute(
                    "EXPLAIN (ANALYZE, SUMMARY) " + viewing.last_views_sql(), (profile, since)
                )
            ]
            server.append(sum(float(x.split(": ")[1].split()[0]) for x in lines[-2:]))
    times.sort()
    server.sort()
    scanned = sorted(set(re.findall(r"\bviewing_history_\d{4}_\d{2}_\d{2}\b", plan)))
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": times[int(len(times) * 0.99) - 1],
        "max_ms": times[-1],
        "server_p50_ms": statistics.median(server),
        "server_p99_ms": server[int(len(server) * 0.99) - 1],
        "partitions_in_plan": scanned,
    }


def refresh(dsn: str) -> dict:
    out = {}
    for view in ("top_titles_by_country", "profile_engagement"):
        with psycopg.connect(dsn) as conn:
            out[view] = views.refresh(conn, view)
    return out


def bill(dsn: str, subscriptions: int, spread_days: int) -> dict:
    """N accounts whose subscriptions renew spread over `spread_days` days; bills the first."""
    day = date(2026, 3, 15)
    renew = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=1)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO product.accounts (account_id, email, country, currency, created_at) "
            "SELECT 'b' || n, 'b' || n || '@example.com', 'US', 'USD', %s - interval '40 days' "
            "FROM generate_series(1, %s) n",
            (renew, subscriptions),
        )
        conn.execute(
            "INSERT INTO product.subscriptions (account_id, plan_id, currency, status, "
            "started_at, current_period_start, current_period_end) "
            "SELECT 'b' || n, (ARRAY['basic', 'standard', 'premium'])[1 + n %% 3], 'USD', "
            "'active', %(at)s - interval '40 days', "
            "%(at)s + (n %% %(spread)s) * interval '1 day' - interval '1 month', "
            "%(at)s + (n %% %(spread)s) * interval '1 day' FROM generate_series(1, %(n)s) n",
            {"at": renew, "spread": spread_days, "n": subscriptions},
        )
    setup = time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE product.subscriptions")
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        report = billing.run_billing(conn, day)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        again = billing.run_billing(conn, day)
    rerun = time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE product.refunds, product.payments, product.invoice_lines, "
            "product.invoices, product.subscriptions, product.profiles, product.accounts CASCADE"
        )
    return {
        "setup_s": setup,
        "billing_s": seconds,
        "invoices": sum(report.invoices_created.values()),
        "attempts": report.attempts,
        "failed": report.failed,
        "rerun_s": rerun,
        "rerun_invoices": sum(again.invoices_created.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--subscriptions", type=int, default=1_000_000)
    parser.add_argument("--same-day", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument(
        "--workers", type=int, default=1, help="days loaded at once, each on its own connection"
    )
    parser.add_argument("--anatomy", action="store_true", help="time a day's load step by step")
    parser.add_argument("--load-only", action="store_true", help="skip queries, views, billing")
    parser.add_argument("--skip-reads", action="store_true", help="skip the queries and views")
    parser.add_argument("--skip-views", action="store_true", help="skip the view refreshes")
    parser.add_argument("--dsn", help="another PostgreSQL than the stack's (a scratch cluster)")
    args = parser.parse_args()
    base = args.dsn or PostgresResource().conninfo()
    with psycopg.connect(base) as conn:
        settings = conn.execute(
            "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name) "
            "FROM pg_settings WHERE name IN ('wal_level', 'max_wal_size', 'shared_buffers', "
            "'checkpoint_timeout', 'synchronous_commit')"
        ).fetchone()[0]
    print(f"server: {settings}")
    for total in args.rows:
        name, dsn = scratch(base)
        try:
            migrations.migrate(dsn)
            print(f"rows={total:,} load average before: {load_average()}", flush=True)
            loaded = load(dsn, total, args.profiles, args.workers)
            print(
                f"rows={total:,} load_day x{args.workers}: {loaded['rows']:,} rows in "
                f"{loaded['seconds']:.2f} s "
                f"= {loaded['rate']:,.0f} rows/s; raw COPY baseline {loaded['raw_rate']:,.0f} "
                f"rows/s; load_day / raw COPY {loaded['rate'] / loaded['raw_rate']:.2f}; "
                f"a day first tenth {loaded['first_days_s']:.3f} s, last tenth "
                f"{loaded['last_days_s']:.3f} s; WAL {loaded['wal_mb']:,.0f} MB; "
                f"load average {load_average()}",
                flush=True,
            )
            if args.anatomy:
                for label, value in anatomy(dsn, total // DAYS, args.profiles).items():
                    unit = "" if label.endswith(", s") else " rows/s"
                    print(f"rows={total:,} anatomy: {label}: {value:,.2f}{unit}", flush=True)
            if args.load_only:
                continue
            if not args.skip_reads:
                q = last_views(dsn, args.profiles, args.queries)
                days = q["partitions_in_plan"]
                print(
                    f"rows={total:,} last 50 views: p50 {q['p50_ms']:.3f} ms, "
                    f"p99 {q['p99_ms']:.3f} ms, max {q['max_ms']:.2f} ms (server side p50 "
                    f"{q['server_p50_ms']:.3f} ms, "
                    f"p99 {q['server_p99_ms']:.3f} ms); {len(days)} day partitions in plan "
                    f"({days[0] if days else '-'} .. {days[-1] if days else '-'})",
                    flush=True,
                )
                if not args.skip_views:
                    r = refresh(dsn)
                    print(
                        f"rows={total:,} refresh concurrently: "
                        + ", ".join(f"{k} {v:.2f} s" for k, v in r.items())
                        + f"; load average {load_average()}",
                        flush=True,
                    )
            if total == args.rows[-1]:
                for count, spread in ((args.subscriptions, 30), (args.same_day, 1)):
                    if not count:
                        continue
                    b = bill(dsn, count, spread)
                    print(
                        f"billing a day of {count:,} subscriptions renewing over {spread} "
                        f"day(s): {b['billing_s']:.2f} s ({b['invoices']:,} invoices, "
                        f"{b['attempts']:,} attempts, {b['failed']:,} failed); re-run "
                        f"{b['rerun_s']:.2f} s, {b['rerun_invoices']} invoices; setup "
                        f"{b['setup_s']:.1f} s; load average {load_average()}",
                        flush=True,
                    )
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
