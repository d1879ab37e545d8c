"""Product database figures on the local stack's PostgreSQL, in a scratch database made and
dropped by the run:

- viewing-history load: rows/s of `viewing.load_day` (what the viewing_history asset runs:
  delete the day, COPY the day, Python tuples through psycopg's copy.write_row) at each size,
  against a baseline measured in the same run: COPY of the same rows pre-formatted as bytes
  (PostgreSQL's own intake, no Python formatting);
- "a profile's last 50 views" (the indexed, partition-pruned query): p50/p99 over random
  profiles, and the EXPLAIN's partitions;
- REFRESH MATERIALIZED VIEW CONCURRENTLY of the two viewing views over the loaded rows;
- billing_run's core for a day over N subscriptions whose renewals are spread over a 30-day
  cycle (a normal day: ~N/30 renewals), and for M subscriptions all renewing that day (the
  worst day).

    .venv/bin/python benchmarks/product_bench.py --rows 1000000 --subscriptions 1000000 \
        --same-day 100000
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from netflix_assets.product import billing, migrations, viewing
from resources.postgres import PostgresResource

FIRST_DAY = date(2026, 1, 1)
DAYS = 90


def scratch(base: str) -> tuple[str, str]:
    name = f"product_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(base)
    params["dbname"] = name
    return name, make_conninfo(**params)


def day_rows(day: date, count: int, profiles: int, rng: random.Random) -> list[tuple]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    rows = []
    for k in range(count):
        n = rng.randrange(profiles)
        rows.append(
            (
                f"{day:%Y%m%d}-{k}",
                day,
                start + timedelta(seconds=rng.randrange(86_400)),
                f"a{n // 3}",
                f"p{n}",
                f"t{int(rng.paretovariate(1.2)) % 5000}",
                "tv",
                "US",
                rng.randrange(3_600_000),
                rng.random() < 0.3,
            )
        )
    return rows


def as_copy_text(rows: list[tuple]) -> bytes:
    out = io.StringIO()
    for r in rows:
        out.write(
            f"{r[0]}\t{r[1]}\t{r[2].isoformat()}\t{r[3]}\t{r[4]}\t{r[5]}\t{r[6]}\t{r[7]}\t"
            f"{r[8]}\t{'t' if r[9] else 'f'}\n"
        )
    return out.getvalue().encode()


def load(dsn: str, total: int, profiles: int) -> dict:
    """Load `total` rows over DAYS days; the first half through load_day, the second half
    as raw COPY text (the baseline), each timed on its own (generation excluded)."""
    rng = random.Random(1)
    per_day = total // DAYS
    with psycopg.connect(dsn) as conn:
        viewing.ensure_partitions(conn, FIRST_DAY, months_ahead=3)
    timed = {"load_day": [0, 0.0], "raw_copy": [0, 0.0]}
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        rows = day_rows(day, per_day, profiles, rng)
        if d % 2 == 0:
            started = time.perf_counter()
            with psycopg.connect(dsn) as conn:
                viewing.load_day(conn, day, rows)
            timed["load_day"][0] += len(rows)
            timed["load_day"][1] += time.perf_counter() - started
        else:
            data = as_copy_text(rows)
            started = time.perf_counter()
            with (
                psycopg.connect(dsn) as conn,
                conn.cursor().copy(
                    "COPY product.viewing_history (session_id, session_date, started_at, "
                    "account_id, profile_id, title_id, device, country, watched_ms, completed) "
                    "FROM STDIN"
                ) as copy,
            ):
                for offset in range(0, len(data), 1 << 20):
                    copy.write(data[offset : offset + (1 << 20)])
            timed["raw_copy"][0] += len(rows)
            timed["raw_copy"][1] += time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE product.viewing_history")
    return {k: (n, s, n / s) for k, (n, s) in timed.items()}


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
    times.sort()
    scanned = sorted({w for w in plan.split() if w.startswith("viewing_history_20")})
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": times[int(len(times) * 0.99) - 1],
        "max_ms": times[-1],
        "partitions_in_plan": scanned,
    }


def refresh(dsn: str) -> dict:
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for view in ("top_titles_by_country", "profile_engagement"):
            started = time.perf_counter()
            conn.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY product.{view}")
            out[view] = time.perf_counter() - started
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
    args = parser.parse_args()
    base = PostgresResource().conninfo()
    for total in args.rows:
        name, dsn = scratch(base)
        try:
            migrations.migrate(dsn)
            loaded = load(dsn, total, args.profiles)
            for kind, (n, s, rate) in loaded.items():
                print(f"rows={total:,} {kind:9s}: {n:,} rows in {s:.2f} s = {rate:,.0f} rows/s")
            ratio = loaded["load_day"][2] / loaded["raw_copy"][2]
            print(f"rows={total:,} load_day / raw COPY rate: {ratio:.2f}")
            q = last_views(dsn, args.profiles, args.queries)
            print(
                f"rows={total:,} last 50 views: p50 {q['p50_ms']:.3f} ms, p99 {q['p99_ms']:.3f} "
                f"ms, max {q['max_ms']:.2f} ms; partitions in plan {q['partitions_in_plan']}"
            )
            r = refresh(dsn)
            print(
                f"rows={total:,} refresh concurrently: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in r.items())
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
                        f"{b['setup_s']:.1f} s"
                    )
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
