"""Accounts, profiles, plans and playback streams as the web app sees them (PostgreSQL).

Every function takes the caller's psycopg connection (one transaction); the tables are those of
schema/migrations (0002 accounts and profiles, 0006 password hashes and stream leases).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("netflix-assets: no such account")
"""Verified against when the e-mail is unknown, so a wrong e-mail takes as long as a wrong
password and the time of a failed sign-in does not tell which accounts exist."""

MATURITY_RATINGS = {
    "kids": ("TV-Y", "TV-Y7", "TV-G"),
    "teen": ("TV-Y", "TV-Y7", "TV-G", "TV-PG", "TV-14"),
    "adult": ("TV-Y", "TV-Y7", "TV-G", "TV-PG", "TV-14", "TV-MA"),
}
"""Which title ratings a profile's maturity level may watch."""
MAX_HEIGHT = {"SD": 480, "HD": 1080, "UHD": 2160}
"""The tallest rendition a plan's max_resolution streams."""
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
"""argon2 hashes what it is given: a megabyte "password" would cost a megabyte of hashing per
sign-in attempt, so longer ones are refused before hashing."""


class SignInFailed(Exception):
    """Unknown e-mail or wrong password; deliberately one message for both."""


class NotEntitled(Exception):
    """The profile may not start this playback; the message says why, for the viewer, and
    `reason` in one word (`no_subscription`, `stream_limit`) for the metrics."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Profile:
    profile_id: str
    account_id: str
    name: str
    maturity_level: str
    country: str


@dataclass(frozen=True)
class Plan:
    plan_id: str
    name: str
    max_streams: int
    max_resolution: str


def set_password(conn: psycopg.Connection, account_id: str, password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ValueError(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    updated = conn.execute(
        "UPDATE product.accounts SET password_hash = %s WHERE account_id = %s",
        (_HASHER.hash(password), account_id),
    ).rowcount
    if not updated:
        raise LookupError(f"no account {account_id!r}")


def sign_in(conn: psycopg.Connection, email: str, password: str) -> str:
    """The account id for this e-mail and password, else SignInFailed."""
    if len(password) > MAX_PASSWORD_CHARS or len(email) > 320:
        raise SignInFailed(
            f"an e-mail has at most 320 characters and a password at most {MAX_PASSWORD_CHARS}"
        )
    row = conn.execute(
        "SELECT account_id, password_hash FROM product.accounts WHERE lower(email) = lower(%s)",
        (email.strip(),),
    ).fetchone()
    stored = row[1] if row and row[1] else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise SignInFailed("e-mail or password is wrong") from None
    if row is None or not row[1]:
        raise SignInFailed("e-mail or password is wrong")
    if _HASHER.check_needs_rehash(stored):
        conn.execute(
            "UPDATE product.accounts SET password_hash = %s WHERE account_id = %s",
            (_HASHER.hash(password), row[0]),
        )
    return row[0]


def profiles(conn: psycopg.Connection, account_id: str) -> list[Profile]:
    rows = conn.execute(
        "SELECT p.profile_id, p.account_id, p.name, p.maturity_level, a.country "
        "FROM product.profiles p JOIN product.accounts a USING (account_id) "
        "WHERE p.account_id = %s ORDER BY p.created_at, p.name",
        (account_id,),
    ).fetchall()
    return [Profile(*r) for r in rows]


def profile(conn: psycopg.Connection, account_id: str, profile_id: str) -> Profile | None:
    return next((p for p in profiles(conn, account_id) if p.profile_id == profile_id), None)


def current_plan(conn: psycopg.Connection, account_id: str) -> Plan | None:
    """The plan of the account's live subscription (trialing, active or past due), if any."""
    row = conn.execute(
        "SELECT p.plan_id, p.name, p.max_streams, p.max_resolution "
        "FROM product.subscriptions s JOIN product.plans p USING (plan_id) "
        "WHERE s.account_id = %s AND s.status IN ('trialing', 'active', 'past_due') "
        "AND s.ended_at IS NULL ORDER BY s.started_at DESC LIMIT 1",
        (account_id,),
    ).fetchone()
    return Plan(*row) if row else None


def start_stream(
    conn: psycopg.Connection, viewer: Profile, title_id: str, lease_s: int
) -> tuple[str, Plan]:
    """A new stream id, or NotEntitled when the account has no live plan or its plan's
    concurrent streams are all playing. The account row is locked, so two players starting at
    once cannot both take the last stream."""
    conn.execute(
        "SELECT 1 FROM product.accounts WHERE account_id = %s FOR UPDATE", (viewer.account_id,)
    )
    plan = current_plan(conn, viewer.account_id)
    if plan is None:
        raise NotEntitled(
            "this account has no active subscription; choose a plan to watch", "no_subscription"
        )
    playing = conn.execute(
        "SELECT count(*) FROM product.playback_streams WHERE account_id = %s "
        "AND ended_at IS NULL AND lease_until > now()",
        (viewer.account_id,),
    ).fetchone()[0]
    if playing >= plan.max_streams:
        raise NotEntitled(
            f"your {plan.name} plan plays on {plan.max_streams} screen"
            f"{'s' if plan.max_streams > 1 else ''} at a time and {playing} "
            f"{'is' if playing == 1 else 'are'} playing now; stop one to watch here",
            "stream_limit",
        )
    stream_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO product.playback_streams "
        "(stream_id, account_id, profile_id, title_id, lease_until) "
        "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))",
        (stream_id, viewer.account_id, viewer.profile_id, title_id, lease_s),
    )
    return stream_id, plan


def renew_stream(conn: psycopg.Connection, viewer: Profile, stream_id: str, lease_s: int) -> bool:
    """Extend a live stream's lease; False when it is not this profile's or has ended."""
    return bool(
        conn.execute(
            "UPDATE product.playback_streams SET lease_until = now() + make_interval(secs => %s) "
            "WHERE stream_id = %s AND profile_id = %s AND ended_at IS NULL",
            (lease_s, stream_id, viewer.profile_id),
        ).rowcount
    )


def end_stream(conn: psycopg.Connection, viewer: Profile, stream_id: str) -> bool:
    return bool(
        conn.execute(
            "UPDATE product.playback_streams SET ended_at = now(), lease_until = "
            "greatest(started_at, least(lease_until, now())) "
            "WHERE stream_id = %s AND profile_id = %s AND ended_at IS NULL",
            (stream_id, viewer.profile_id),
        ).rowcount
    )
