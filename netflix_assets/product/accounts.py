"""Writes of the account side: sign-ups, profiles, subscriptions, plan changes with proration,
cancellations and payment notifications. Each function runs inside the caller's transaction
(a PostgresResource connection), and the constraints of schema/migrations do the validation:
a refused write raises RuleViolation naming the rule and leaves nothing behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from netflix_assets.product.rules import RuleViolation, named_rules

TRIAL_DAYS = 7
LIVE = ("trialing", "active", "past_due", "unpaid")


def add_months(at: datetime, months: int) -> datetime:
    """Calendar months, clamped to the month's last day (Jan 31 + 1 month = Feb 28), as
    PostgreSQL's `+ interval '1 month'` does, so Python and SQL agree on period ends."""
    month = at.month - 1 + months
    year, month = at.year + month // 12, month % 12 + 1
    for day in (at.day, 30, 29, 28):
        try:
            return at.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def create_account(
    conn: psycopg.Connection,
    account_id: str,
    email: str,
    country: str,
    currency: str,
    at: datetime,
) -> None:
    with named_rules():
        conn.execute(
            "INSERT INTO product.accounts (account_id, email, country, currency, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (account_id, email, country, currency, at),
        )


def add_profile(
    conn: psycopg.Connection,
    profile_id: str,
    account_id: str,
    name: str,
    maturity_level: str = "adult",
    language: str = "en",
    at: datetime | None = None,
) -> None:
    with named_rules():
        conn.execute(
            "INSERT INTO product.profiles "
            "(profile_id, account_id, name, maturity_level, language, created_at) "
            "VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()))",
            (profile_id, account_id, name, maturity_level, language, at),
        )


def subscribe(
    conn: psycopg.Connection,
    account_id: str,
    plan_id: str,
    at: datetime,
    trial: bool = False,
    currency: str | None = None,
    period: tuple[datetime, datetime] | None = None,
) -> int:
    """A new subscription in the account's currency (or `currency`). With a trial its first
    period is the trial (billing_run invoices the first paid month when the trial ends);
    without one billing_run invoices the first month on the sign-up day. `period` sets the
    running period of a subscription created after the fact (its trial, if any, is over)."""
    trial_end = at + timedelta(days=TRIAL_DAYS) if trial else None
    start, end = period or (at, trial_end or add_months(at, 1))
    status = "trialing" if trial and period is None else "active"
    with named_rules():
        row = conn.execute(
            "INSERT INTO product.subscriptions (account_id, plan_id, currency, status, "
            "started_at, trial_end, current_period_start, current_period_end) "
            "SELECT %(account)s, %(plan)s, coalesce(%(currency)s, currency), %(status)s, %(at)s, "
            "%(trial_end)s, %(start)s, %(end)s FROM product.accounts "
            "WHERE account_id = %(account)s RETURNING subscription_id",
            {
                "account": account_id,
                "plan": plan_id,
                "currency": currency,
                "status": status,
                "at": at,
                "trial_end": trial_end,
                "start": start,
                "end": end,
            },
        ).fetchone()
    if row is None:
        raise RuleViolation("subscriptions_account_id_fkey", f"no account {account_id!r}")
    return row[0]


def cancel(conn: psycopg.Connection, subscription_id: int, at: datetime) -> None:
    """Churn: the subscription ends now (no refund of the running period, as Netflix does)."""
    with named_rules():
        conn.execute(
            "UPDATE product.subscriptions SET status = 'canceled', ended_at = %s, "
            "end_reason = 'churn' WHERE subscription_id = %s AND status <> 'canceled'",
            (at, subscription_id),
        )


@dataclass(frozen=True)
class Proration:
    credit_cents: int
    """Unused time of the old plan, negative."""
    charge_cents: int
    """Remaining time at the new plan's price."""

    @property
    def net_cents(self) -> int:
        return self.credit_cents + self.charge_cents


def prorate(
    old_price: int, new_price: int, period_start: datetime, period_end: datetime, at: datetime
) -> Proration:
    """Stripe-style proration to the second: the share of the period left after `at`."""
    left = (period_end - at).total_seconds() / (period_end - period_start).total_seconds()
    left = min(max(left, 0.0), 1.0)
    return Proration(-round(old_price * left), round(new_price * left))


def change_plan(conn: psycopg.Connection, subscription_id: int, new_plan: str, at: datetime) -> int:
    """Upgrade or downgrade now: the old subscription ends, a new one on the new plan keeps the
    billing cycle (same period start and end, Stripe's default). Outside a trial the difference
    is prorated: an upgrade gets a proration invoice (billing_run collects it that day), a
    downgrade refunds the unused difference from the last payment. Returns the new id."""
    old = conn.execute(
        "SELECT s.account_id, s.plan_id, s.currency, s.status, s.trial_end, "
        "s.current_period_start, s.current_period_end, p.amount_cents "
        "FROM product.subscriptions s JOIN product.plan_prices p USING (plan_id, currency) "
        "WHERE s.subscription_id = %s FOR UPDATE OF s",
        (subscription_id,),
    ).fetchone()
    if old is None or old[3] not in LIVE:
        raise RuleViolation(
            "subscriptions_plan_change_needs_live", f"{subscription_id} is not live"
        )
    account, old_plan, currency, status, trial_end, start, end, old_price = old
    price = conn.execute(
        "SELECT amount_cents FROM product.plan_prices WHERE plan_id = %s AND currency = %s",
        (new_plan, currency),
    ).fetchone()
    if price is None:
        raise RuleViolation(
            "subscriptions_plan_priced_in_currency", f"plan {new_plan!r} has no {currency} price"
        )
    with named_rules():
        conn.execute(
            "UPDATE product.subscriptions SET status = 'canceled', ended_at = %s, "
            "end_reason = 'plan_change' WHERE subscription_id = %s",
            (at, subscription_id),
        )
        new_id = conn.execute(
            "INSERT INTO product.subscriptions (account_id, plan_id, currency, status, "
            "started_at, trial_end, current_period_start, current_period_end, "
            "replaces_subscription_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING subscription_id",
            (account, new_plan, currency, status, at, trial_end, start, end, subscription_id),
        ).fetchone()[0]
        if status == "trialing":
            return new_id
        proration = prorate(old_price, price[0], start, end, at)
        if proration.net_cents > 0:
            _proration_invoice(
                conn, new_id, account, currency, at, end, old_plan, new_plan, proration
            )
        elif proration.net_cents < 0:
            _refund_last_payment(conn, subscription_id, -proration.net_cents, at)
    return new_id


def _proration_invoice(
    conn: psycopg.Connection,
    subscription_id: int,
    account: str,
    currency: str,
    at: datetime,
    end: datetime,
    old_plan: str,
    new_plan: str,
    proration: Proration,
) -> None:
    invoice_id = conn.execute(
        "INSERT INTO product.invoices (subscription_id, account_id, currency, kind, status, "
        "period_start, period_end, billing_date, amount_due_cents) "
        "VALUES (%s, %s, %s, 'proration', 'open', %s, %s, (%s AT TIME ZONE 'UTC')::date, %s) "
        "RETURNING invoice_id",
        (subscription_id, account, currency, at, end, at, proration.net_cents),
    ).fetchone()[0]
    conn.cursor().executemany(
        "INSERT INTO product.invoice_lines (invoice_id, line_no, kind, plan_id, description, "
        "amount_cents) VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (
                invoice_id,
                1,
                "proration_credit",
                old_plan,
                f"unused time on {old_plan}",
                proration.credit_cents,
            ),
            (
                invoice_id,
                2,
                "proration_charge",
                new_plan,
                f"remaining time on {new_plan}",
                proration.charge_cents,
            ),
        ],
    )


def _refund_last_payment(
    conn: psycopg.Connection, subscription_id: int, amount: int, at: datetime
) -> None:
    """Refund a downgrade's unused difference from the old subscription's last payment (capped
    at what that payment still holds; nothing when it never paid)."""
    row = conn.execute(
        "SELECT p.payment_id, p.currency, p.amount_cents - coalesce("
        "(SELECT sum(r.amount_cents) FROM product.refunds r WHERE r.payment_id = p.payment_id), 0) "
        "FROM product.payments p JOIN product.invoices i USING (invoice_id) "
        "WHERE i.subscription_id = %s AND p.status = 'succeeded' "
        "ORDER BY p.created_at DESC LIMIT 1",
        (subscription_id,),
    ).fetchone()
    if row is None or row[2] <= 0:
        return
    conn.execute(
        "INSERT INTO product.refunds (payment_id, currency, amount_cents, reason, "
        "idempotency_key, created_at) VALUES (%s, %s, %s, 'downgrade proration', %s, %s)",
        (row[0], row[1], min(amount, row[2]), f"downgrade:{subscription_id}", at),
    )


@dataclass(frozen=True)
class PaymentNotification:
    """What a payment provider's webhook says about one attempt on one invoice."""

    idempotency_key: str
    invoice_id: int
    amount_cents: int
    currency: str
    status: str
    at: datetime
    attempt: int = 1
    failure_code: str | None = None


def record_payment(conn: psycopg.Connection, note: PaymentNotification) -> bool:
    """Record a notification; True when it was new. The same notification delivered again is a
    no-op (False); a different one under a used idempotency key is refused, as is a payment
    whose currency differs from its invoice's or whose amount is negative."""
    with named_rules():
        row = conn.execute(
            "INSERT INTO product.payments (invoice_id, currency, amount_cents, status, attempt, "
            "failure_code, idempotency_key, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING payment_id",
            (
                note.invoice_id,
                note.currency,
                note.amount_cents,
                note.status,
                note.attempt,
                note.failure_code,
                note.idempotency_key,
                note.at,
            ),
        ).fetchone()
    if row is None:
        seen = conn.execute(
            "SELECT invoice_id, amount_cents, currency, status FROM product.payments "
            "WHERE idempotency_key = %s",
            (note.idempotency_key,),
        ).fetchone()
        if seen != (note.invoice_id, note.amount_cents, note.currency, note.status):
            raise RuleViolation(
                "payments_idempotency_key_unique",
                f"key {note.idempotency_key!r} was already used for a different payment {seen}",
            )
        return False
    if note.status == "succeeded":
        with named_rules():
            conn.execute(
                "UPDATE product.invoices SET status = 'paid', paid_at = %s "
                "WHERE invoice_id = %s AND status = 'open'",
                (note.at, note.invoice_id),
            )
            conn.execute(
                "UPDATE product.subscriptions s SET status = 'active' FROM product.invoices i "
                "WHERE i.invoice_id = %s AND s.subscription_id = i.subscription_id "
                "AND s.status IN ('trialing', 'past_due', 'unpaid')",
                (note.invoice_id,),
            )
    return True
