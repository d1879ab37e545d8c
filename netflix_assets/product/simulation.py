"""The account side of `netflix-assets simulate`: seeded sign-ups, trials, plan changes with
proration and cancellations written to PostgreSQL day by day, a seeded synthetic catalog when
the video pipeline has published too few titles, and the population (accounts, profiles,
titles) the event simulator then plays, so the lake, the stream and the recommender speak of
the same accounts and titles as the product database.

Determinism: everything is drawn from `random.Random(f"{seed}/accounts/...")`; a (seed, day)
already applied is recorded in product.simulated_days and skipped, so re-running adds nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg

from netflix_assets.product import accounts

COUNTRY_CURRENCY = {
    "US": "USD",
    "BR": "BRL",
    "GB": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "IN": "INR",
    "JP": "JPY",
    "MX": "MXN",
    "CA": "CAD",
    "ES": "EUR",
}
COUNTRY_LANGUAGE = {
    "US": "en",
    "BR": "pt",
    "GB": "en",
    "DE": "de",
    "FR": "fr",
    "IN": "hi",
    "JP": "ja",
    "MX": "es",
    "CA": "en",
    "ES": "es",
}
PLANS = ("basic", "standard", "premium")
PLAN_WEIGHTS = (0.3, 0.45, 0.25)
GENRES = ("drama", "comedy", "action", "documentary", "kids", "thriller", "romance", "anime")
MATURITY = {"kids": "TV-Y7", "documentary": "TV-PG", "comedy": "TV-14", "thriller": "TV-MA"}


@dataclass(frozen=True)
class AccountSimConfig:
    accounts: int = 1000
    """Accounts that exist before the first day (signed up over the previous 40 days)."""
    days: int = 1
    start: date = date(2026, 11, 1)
    seed: int = 7
    signups_per_day: float = 0.01
    """New accounts per day, as a share of `accounts`."""
    trial_share: float = 0.5
    daily_churn: float = 0.002
    daily_plan_change: float = 0.002


@dataclass
class SimulationReport:
    days_applied: list[date]
    days_skipped: list[date]
    accounts: int = 0
    profiles: int = 0
    subscriptions: int = 0
    plan_changes: int = 0
    cancellations: int = 0


@dataclass(frozen=True)
class PopulationAccount:
    account_id: str
    country: str
    profiles: tuple[str, ...]


@dataclass(frozen=True)
class PopulationTitle:
    title_id: str
    genre: str
    minutes: int


@dataclass(frozen=True)
class Population:
    """Who watches what: live accounts with their profiles, and the catalog's titles, most
    recently published first (the simulator gives the first titles the most views)."""

    accounts: tuple[PopulationAccount, ...]
    titles: tuple[PopulationTitle, ...]


def _at(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(), UTC) + timedelta(seconds=rng.randrange(86_400))


def _new_account(
    conn: psycopg.Connection, seed: int, n: int, at: datetime, as_of: datetime | None = None
) -> int:
    """Account n of the seed with 1-5 profiles and a subscription; returns its profile count.
    With `as_of` (a backlog account) the subscription's period is the one running then: the
    history before the simulation is not billed."""
    rng = random.Random(f"{seed}/accounts/{n}")
    account_id = f"s{seed}-a{n}"
    country = rng.choice(tuple(COUNTRY_CURRENCY))
    accounts.create_account(
        conn, account_id, f"viewer{n}.s{seed}@example.com", country, COUNTRY_CURRENCY[country], at
    )
    count = min(5, 1 + int(rng.expovariate(0.8)))
    for k in range(count):
        kids = k > 0 and rng.random() < 0.2
        accounts.add_profile(
            conn,
            f"{account_id}-p{k}",
            account_id,
            f"Kids {k + 1}" if kids else f"Profile {k + 1}",
            "kids" if kids else "adult",
            COUNTRY_LANGUAGE[country],
            at,
        )
    plan = rng.choices(PLANS, PLAN_WEIGHTS)[0]
    trial = rng.random() < 0.5
    trial_end = at + timedelta(days=accounts.TRIAL_DAYS) if trial else None
    if as_of is None or (trial_end is not None and trial_end > as_of):
        accounts.subscribe(conn, account_id, plan, at, trial=trial)
        return count
    anchor, months = trial_end or at, 0
    while accounts.add_months(anchor, months + 1) <= as_of:
        months += 1
    period = (accounts.add_months(anchor, months), accounts.add_months(anchor, months + 1))
    accounts.subscribe(conn, account_id, plan, at, trial=trial, period=period)
    return count


def _backlog(conn: psycopg.Connection, config: AccountSimConfig, report: SimulationReport) -> None:
    """The accounts that exist before the first day, signed up over the 40 days before it."""
    first = datetime.combine(config.start, time(), UTC)
    for n in range(config.accounts):
        rng = random.Random(f"{config.seed}/backlog/{n}")
        signed_up = first - timedelta(seconds=1 + rng.randrange(40 * 86_400))
        report.profiles += _new_account(conn, config.seed, n, signed_up, as_of=first)
        report.accounts += 1
        report.subscriptions += 1


def _day(conn: psycopg.Connection, config: AccountSimConfig, index: int, report: SimulationReport):
    day = config.start + timedelta(days=index)
    rng = random.Random(f"{config.seed}/day/{day.isoformat()}")
    next_n = config.accounts + index * 1_000_000  # sign-ups of a day get their own id range
    for k in range(int(config.accounts * config.signups_per_day + rng.random())):
        report.profiles += _new_account(conn, config.seed, next_n + k, _at(day, rng))
        report.accounts += 1
        report.subscriptions += 1
    live = conn.execute(
        "SELECT subscription_id, plan_id, started_at FROM product.subscriptions "
        "WHERE account_id LIKE %s AND status IN ('trialing', 'active', 'past_due') "
        "ORDER BY subscription_id",
        (f"s{config.seed}-a%",),
    ).fetchall()
    for subscription_id, plan, started in live:
        roll = rng.random()
        at = _at(day, rng)
        if at <= started:
            continue
        if roll < config.daily_churn:
            accounts.cancel(conn, subscription_id, at)
            report.cancellations += 1
        elif roll < config.daily_churn + config.daily_plan_change:
            others = [p for p in PLANS if p != plan]
            accounts.change_plan(conn, subscription_id, rng.choice(others), at)
            report.plan_changes += 1


def simulate_accounts(conn: psycopg.Connection, config: AccountSimConfig) -> SimulationReport:
    """Apply the days of `config` not yet applied for its seed, inside the caller's transaction
    (a failure leaves no half-simulated day)."""
    report = SimulationReport([], [])
    conn.execute("SELECT pg_advisory_xact_lock(7015002, %s)", (config.seed,))
    seeded = conn.execute(
        "SELECT 1 FROM product.accounts WHERE account_id = %s", (f"s{config.seed}-a0",)
    ).fetchone()
    if not seeded:
        _backlog(conn, config, report)
    for index in range(config.days):
        day = config.start + timedelta(days=index)
        fresh = conn.execute(
            "INSERT INTO product.simulated_days (seed, day) VALUES (%s, %s) "
            "ON CONFLICT DO NOTHING RETURNING day",
            (config.seed, day),
        ).fetchone()
        if fresh is None:
            report.days_skipped.append(day)
            continue
        _day(conn, config, index, report)
        report.days_applied.append(day)
    return report


def ensure_catalog(conn: psycopg.Connection, titles: int, seed: int = 7) -> int:
    """Make the catalog hold at least `titles` titles: the video pipeline's published titles
    count first, seeded synthetic ones (synthetic = true, with genres, ratings and availability
    in every country) fill the rest. Returns how many synthetic titles were added."""
    published = conn.execute(
        "SELECT count(*) FROM catalog.titles WHERE status = 'published' AND NOT synthetic"
    ).fetchone()[0]
    existing = conn.execute("SELECT count(*) FROM catalog.titles WHERE synthetic").fetchone()[0]
    wanted = max(0, titles - published)
    added = 0
    for n in range(existing, wanted):
        rng = random.Random(f"{seed}/title/{n}")
        genre = rng.choice(GENRES)
        title_id = f"syn-{n:05d}"
        conn.execute(
            "INSERT INTO catalog.titles (title_id, title, status, kind, maturity_rating, "
            "release_year, runtime_minutes, synthetic) VALUES (%s, %s, 'published', %s, %s, %s, "
            "%s, true) ON CONFLICT (title_id) DO NOTHING",
            (
                title_id,
                f"Synthetic {genre.title()} {n}",
                "series" if rng.random() < 0.3 else "movie",
                MATURITY.get(genre, "TV-14"),
                rng.randint(1980, 2026),
                rng.randint(22, 140),
            ),
        )
        conn.execute(
            "INSERT INTO catalog.title_genres (title_id, genre_id) VALUES (%s, %s) "
            "ON CONFLICT DO NOTHING",
            (title_id, genre),
        )
        conn.cursor().executemany(
            "INSERT INTO catalog.availability (title_id, country, available_from) "
            "VALUES (%s, %s, '2020-01-01') ON CONFLICT DO NOTHING",
            [(title_id, country) for country in COUNTRY_CURRENCY],
        )
        added += 1
    return added


def load_population(conn: psycopg.Connection, titles: int, seed: int | None = None) -> Population:
    """Accounts with a live subscription (of one seed, or all) and their profiles; the
    published titles (newest first), then synthetic ones, up to `titles` in all."""
    like = f"s{seed}-a%" if seed is not None else "%"
    rows = conn.execute(
        "SELECT a.account_id, a.country, array_agg(p.profile_id ORDER BY p.profile_id) "
        "FROM product.accounts a JOIN product.profiles p USING (account_id) "
        "WHERE a.account_id LIKE %s AND EXISTS (SELECT 1 FROM product.subscriptions s "
        "WHERE s.account_id = a.account_id AND s.status <> 'canceled') "
        "GROUP BY a.account_id, a.country ORDER BY a.account_id",
        (like,),
    ).fetchall()
    catalog = conn.execute(
        "SELECT t.title_id, coalesce(min(g.genre_id), 'drama'), "
        "coalesce(t.runtime_minutes, 30) FROM catalog.titles t "
        "LEFT JOIN catalog.title_genres g USING (title_id) WHERE t.status = 'published' "
        "GROUP BY t.title_id, t.synthetic, t.updated_at, t.runtime_minutes "
        "ORDER BY t.synthetic, t.updated_at DESC, t.title_id LIMIT %s",
        (titles,),
    ).fetchall()
    return Population(
        tuple(PopulationAccount(a, c, tuple(p)) for a, c, p in rows),
        tuple(PopulationTitle(t, g, m) for t, g, m in catalog),
    )
