"""One day of billing, set-based in one transaction: invoices for the subscriptions that start
or renew that day, payment attempts (first tries and dunning retries), and the status changes
they cause. Every write is keyed (an invoice per subscription and period start, a payment per
idempotency key), so re-running a day creates nothing twice.

The card network is simulated: an attempt fails when a hash of its idempotency key falls under
the configured rate, so a day's outcome is the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import psycopg

from netflix_assets.product.rules import named_rules

RETRY_DAYS = (0, 3, 5, 7)
"""Dunning: attempt n is made RETRY_DAYS[n-1] days after the invoice's billing date; when the
last fails the invoice is uncollectible and the subscription unpaid."""


@dataclass(frozen=True)
class BillingConfig:
    first_attempt_failure: float = 0.06
    retry_failure: float = 0.5
    attempt_hour: int = 6
    """Attempts are stamped at this UTC hour of the day, so the run's result does not depend on
    when it ran."""


@dataclass
class BillingReport:
    day: date
    invoices_created: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    now_past_due: int = 0
    now_unpaid: int = 0
    collected_cents: dict[str, int] = field(default_factory=dict)


NEW_INVOICES = """
WITH due AS (
    SELECT s.subscription_id, s.account_id, s.currency, s.plan_id, p.amount_cents,
           CASE WHEN s.current_period_end >= %(start)s AND s.current_period_end < %(end)s
                THEN 'renewal' ELSE 'signup' END AS kind,
           CASE WHEN s.current_period_end >= %(start)s AND s.current_period_end < %(end)s
                THEN s.current_period_end ELSE s.current_period_start END AS period_start
    FROM product.subscriptions s
    JOIN product.plan_prices p ON p.plan_id = s.plan_id AND p.currency = s.currency
    WHERE s.status IN ('trialing', 'active')
      AND (
        (s.current_period_end >= %(start)s AND s.current_period_end < %(end)s)
        OR (s.started_at >= %(start)s AND s.started_at < %(end)s AND s.trial_end IS NULL
            AND s.replaces_subscription_id IS NULL)
      )
),
created AS (
    INSERT INTO product.invoices (subscription_id, account_id, currency, kind, status,
        period_start, period_end, billing_date, amount_due_cents)
    SELECT subscription_id, account_id, currency, kind, 'open', period_start,
           period_start + interval '1 month', %(day)s, amount_cents
    FROM due
    ON CONFLICT (subscription_id, period_start) DO NOTHING
    RETURNING invoice_id, subscription_id, kind, amount_due_cents, period_start, period_end
),
lines AS (
    INSERT INTO product.invoice_lines (invoice_id, line_no, kind, plan_id, description,
        amount_cents)
    SELECT c.invoice_id, 1, 'subscription', d.plan_id, 'monthly ' || d.plan_id,
           c.amount_due_cents
    FROM created c JOIN due d USING (subscription_id)
),
advanced AS (
    -- a renewal moves the subscription into the invoiced period (in the same statement, so
    -- an invoice and its period move are never apart)
    UPDATE product.subscriptions s
    SET current_period_start = c.period_start, current_period_end = c.period_end
    FROM created c
    WHERE c.kind = 'renewal' AND s.subscription_id = c.subscription_id
)
SELECT kind, count(*) FROM created GROUP BY kind
"""

ATTEMPTS = """
WITH due AS (
    SELECT i.invoice_id, i.currency, i.amount_due_cents, n.attempt,
           'inv:' || i.invoice_id || ':attempt:' || n.attempt AS idempotency_key
    FROM product.invoices i
    CROSS JOIN LATERAL unnest(%(offsets)s::int[]) WITH ORDINALITY AS n(offset_days, attempt)
    WHERE i.status = 'open' AND i.billing_date + n.offset_days = %(day)s
      AND i.billing_date >= %(day)s - %(horizon)s
)
INSERT INTO product.payments (invoice_id, currency, amount_cents, status, attempt,
    failure_code, idempotency_key, created_at)
SELECT invoice_id, currency, amount_due_cents, outcome,
       attempt, CASE WHEN outcome = 'failed' THEN 'card_declined' END, idempotency_key,
       %(at)s
FROM (
    SELECT *, CASE WHEN amount_due_cents > 0 AND (abs(hashtext(idempotency_key)) %% 10000)
                        < CASE WHEN attempt = 1 THEN %(first)s ELSE %(retry)s END
                   THEN 'failed' ELSE 'succeeded' END AS outcome
    FROM due
) o
ON CONFLICT (idempotency_key) DO NOTHING
"""

SETTLE = """
WITH today AS (
    SELECT p.invoice_id, p.status, p.attempt, p.amount_cents, p.currency, p.created_at
    FROM product.payments p
    WHERE p.created_at >= %(start)s AND p.created_at < %(end)s
),
paid AS (
    UPDATE product.invoices i SET status = 'paid', paid_at = t.created_at
    FROM today t
    WHERE t.invoice_id = i.invoice_id AND t.status = 'succeeded' AND i.status = 'open'
    RETURNING i.subscription_id
),
uncollectible AS (
    UPDATE product.invoices i SET status = 'uncollectible'
    FROM today t
    WHERE t.invoice_id = i.invoice_id AND t.status = 'failed' AND t.attempt = %(last)s
      AND i.status = 'open'
    RETURNING i.subscription_id
)
SELECT (SELECT count(*) FROM paid), (SELECT count(*) FROM uncollectible)
"""

STATUS_AFTER_PAYMENT = """
UPDATE product.subscriptions s SET status = 'active'
FROM product.invoices i
WHERE i.subscription_id = s.subscription_id AND i.status = 'paid'
  AND i.paid_at >= %(start)s AND i.paid_at < %(end)s
  AND s.status IN ('trialing', 'past_due', 'unpaid')
"""

STATUS_AFTER_FAILURE = """
UPDATE product.subscriptions s
SET status = CASE WHEN i.status = 'uncollectible' THEN 'unpaid' ELSE 'past_due' END
FROM product.payments p JOIN product.invoices i USING (invoice_id)
WHERE p.created_at >= %(start)s AND p.created_at < %(end)s AND p.status = 'failed'
  AND i.subscription_id = s.subscription_id AND i.status IN ('open', 'uncollectible')
  AND s.status IN ('trialing', 'active', 'past_due')
  AND s.status <> CASE WHEN i.status = 'uncollectible' THEN 'unpaid' ELSE 'past_due' END
RETURNING s.status
"""

TOTALS = """
SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'),
       count(*) FILTER (WHERE status = 'failed')
FROM product.payments WHERE created_at >= %(start)s AND created_at < %(end)s
"""

COLLECTED = """
SELECT currency, sum(amount_due_cents) FROM product.invoices
WHERE status = 'paid' AND paid_at >= %(start)s AND paid_at < %(end)s GROUP BY currency
"""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


def run_billing(
    conn: psycopg.Connection, day: date, config: BillingConfig | None = None
) -> BillingReport:
    """Bill one day inside the caller's transaction (all of it or nothing)."""
    config = config or BillingConfig()
    start, end = day_bounds(day)
    params = {
        "day": day,
        "start": start,
        "end": end,
        "at": start + timedelta(hours=config.attempt_hour),
        "offsets": list(RETRY_DAYS),
        "horizon": max(RETRY_DAYS),
        "first": int(config.first_attempt_failure * 10_000),
        "retry": int(config.retry_failure * 10_000),
        "last": len(RETRY_DAYS),
    }
    report = BillingReport(day)
    conn.execute("SET LOCAL TimeZone = 'UTC'")  # '+ 1 month' means a UTC calendar month
    with named_rules():
        report.invoices_created = dict(conn.execute(NEW_INVOICES, params).fetchall())
        conn.execute(ATTEMPTS, params)
        # The statistics must see the rows this transaction just wrote: planned on a freshly
        # truncated or small table's, SETTLE chose a nested loop over 100k same-day payments
        # and ran for over 8 minutes. ANALYZE counts the transaction's own inserts.
        conn.execute("ANALYZE product.invoices, product.payments")
        conn.execute(SETTLE, params)
        conn.execute(STATUS_AFTER_PAYMENT, params)
        changed = [row[0] for row in conn.execute(STATUS_AFTER_FAILURE, params)]
    report.now_past_due = changed.count("past_due")
    report.now_unpaid = changed.count("unpaid")
    report.attempts, report.succeeded, report.failed = conn.execute(TOTALS, params).fetchone()
    report.collected_cents = {c.strip(): int(v) for c, v in conn.execute(COLLECTED, params)}
    return report
