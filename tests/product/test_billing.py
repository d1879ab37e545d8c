"""billing_run's core on the real PostgreSQL: sign-up and renewal invoices, payment attempts,
dunning, and a re-run day that creates nothing twice."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from netflix_assets.product import accounts, billing
from netflix_assets.product.simulation import AccountSimConfig, simulate_accounts
from resources.postgres import PostgresResource

pytestmark = pytest.mark.stack


def totals(db: PostgresResource) -> tuple[int, ...]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM product.invoices), "
            "(SELECT count(*) FROM product.invoice_lines), "
            "(SELECT count(*) FROM product.payments), "
            "(SELECT count(*) FROM product.subscriptions WHERE status = 'past_due')"
        ).fetchone()


def test_a_trial_converts_on_its_last_day_and_re_billing_creates_nothing(
    product_db: PostgresResource,
) -> None:
    account = f"bill-{uuid.uuid4().hex[:8]}"
    signup = datetime(2027, 3, 1, 9, tzinfo=UTC)
    with product_db.connect() as conn:
        accounts.create_account(conn, account, f"{account}@example.com", "GB", "GBP", signup)
        sub = accounts.subscribe(conn, account, "premium", signup, trial=True)
    trial_day = (signup + timedelta(days=accounts.TRIAL_DAYS)).date()
    with product_db.connect() as conn:
        before = billing.run_billing(conn, trial_day - timedelta(days=1))
    with product_db.connect() as conn:
        report = billing.run_billing(conn, trial_day)
        invoice = conn.execute(
            "SELECT kind, amount_due_cents, currency, period_start, period_end, status "
            "FROM product.invoices WHERE subscription_id = %s",
            (sub,),
        ).fetchall()
        status = conn.execute(
            "SELECT status, current_period_start FROM product.subscriptions "
            "WHERE subscription_id = %s",
            (sub,),
        ).fetchone()
    assert before.invoices_created == {}
    assert report.invoices_created.get("renewal", 0) >= 1
    ((kind, amount, currency, start, end, state),) = invoice
    assert (kind, amount, currency.strip()) == ("renewal", 1899, "GBP")
    assert start == signup + timedelta(days=7) and end == accounts.add_months(start, 1)
    assert status[1] == start  # the period moved on
    assert (state, status[0]) in {("paid", "active"), ("open", "past_due")}
    snapshot = totals(product_db)
    with product_db.connect() as conn:
        again = billing.run_billing(conn, trial_day)
    assert again.invoices_created == {} and totals(product_db) == snapshot


def test_simulated_month_bills_every_day_with_dunning_and_idempotent_re_runs(
    product_db: PostgresResource,
) -> None:
    config = AccountSimConfig(accounts=300, days=12, start=date(2027, 6, 1), seed=101)
    with product_db.connect() as conn:
        report = simulate_accounts(conn, config)
    assert report.accounts >= 300 and report.days_applied and not report.days_skipped
    with product_db.connect() as conn:
        assert simulate_accounts(conn, config).days_skipped == report.days_applied
    reports = []
    for offset in range(config.days):
        with product_db.connect() as conn:
            reports.append(billing.run_billing(conn, config.start + timedelta(days=offset)))
    created = sum(sum(r.invoices_created.values()) for r in reports)
    assert created > 50  # 300 accounts renew over 12 days of a 30-day cycle
    assert sum(r.failed for r in reports) > 0 and sum(r.succeeded for r in reports) > 0
    retries = sum(r.attempts for r in reports) - created
    assert retries > 0  # dunning retried some failed invoices
    snapshot = totals(product_db)
    for offset in range(config.days):
        with product_db.connect() as conn:
            again = billing.run_billing(conn, config.start + timedelta(days=offset))
        assert again.invoices_created == {}
    assert totals(product_db) == snapshot
    with product_db.connect() as conn:
        unpaid_without_uncollectible = conn.execute(
            "SELECT count(*) FROM product.subscriptions s WHERE s.status = 'unpaid' AND NOT "
            "EXISTS (SELECT 1 FROM product.invoices i WHERE i.subscription_id = s.subscription_id "
            "AND i.status = 'uncollectible')"
        ).fetchone()[0]
        paid_without_payment = conn.execute(
            "SELECT count(*) FROM product.invoices i WHERE i.status = 'paid' AND NOT EXISTS "
            "(SELECT 1 FROM product.payments p WHERE p.invoice_id = i.invoice_id "
            "AND p.status = 'succeeded')"
        ).fetchone()[0]
    assert unpaid_without_uncollectible == 0 and paid_without_payment == 0
