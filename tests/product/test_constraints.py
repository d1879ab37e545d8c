"""Bad input to the product database is refused by a named rule and leaves nothing behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from netflix_assets.product import accounts
from netflix_assets.product.accounts import PaymentNotification
from netflix_assets.product.rules import RuleViolation, named_rules
from resources.postgres import PostgresResource

pytestmark = pytest.mark.stack
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def new_account(db: PostgresResource, country: str = "US", currency: str = "USD") -> str:
    account = f"acct-{uuid.uuid4().hex[:10]}"
    with db.connect() as conn:
        accounts.create_account(conn, account, f"{account}@example.com", country, currency, T0)
    return account


def count(db: PostgresResource, sql: str, *params: object) -> int:
    with db.connect() as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_email_is_unique_whatever_its_case(product_db: PostgresResource) -> None:
    account = new_account(product_db)
    with (
        pytest.raises(RuleViolation, match="accounts_email_unique_ci") as refused,
        product_db.connect() as conn,
    ):
        accounts.create_account(
            conn, account + "-2", f"{account.upper()}@EXAMPLE.com", "US", "USD", T0
        )
    assert refused.value.rule == "accounts_email_unique_ci"
    assert (
        count(
            product_db,
            "SELECT count(*) FROM product.accounts WHERE account_id = %s",
            account + "-2",
        )
        == 0
    )


def test_a_sixth_profile_is_refused_and_nothing_of_the_batch_is_written(
    product_db: PostgresResource,
) -> None:
    account = new_account(product_db)
    with product_db.connect() as conn:
        for k in range(5):
            accounts.add_profile(conn, f"{account}-p{k}", account, f"viewer {k}")
    with (
        pytest.raises(RuleViolation, match="profiles_at_most_5_per_account") as refused,
        product_db.connect() as conn,
    ):
        accounts.create_account(
            conn, account + "-other", f"o-{account}@example.com", "US", "USD", T0
        )
        accounts.add_profile(conn, f"{account}-p5", account, "one too many")
    assert "already has 5 profiles" in str(refused.value)
    # the same transaction's other write was rolled back with it
    assert (
        count(
            product_db,
            "SELECT count(*) FROM product.accounts WHERE account_id = %s",
            account + "-other",
        )
        == 0
    )
    assert (
        count(product_db, "SELECT count(*) FROM product.profiles WHERE account_id = %s", account)
        == 5
    )


def test_bad_profile_values_name_their_rule(product_db: PostgresResource) -> None:
    account = new_account(product_db)
    with (
        pytest.raises(RuleViolation, match="profiles_maturity_level_known"),
        product_db.connect() as conn,
    ):
        accounts.add_profile(conn, f"{account}-x", account, "x", maturity_level="grown-up")


def test_overlapping_live_subscriptions_are_refused(product_db: PostgresResource) -> None:
    account = new_account(product_db)
    with product_db.connect() as conn:
        first = accounts.subscribe(conn, account, "standard", T0)
    with (
        pytest.raises(RuleViolation, match="subscriptions_no_overlap_per_account"),
        product_db.connect() as conn,
    ):
        accounts.subscribe(conn, account, "premium", T0 + timedelta(days=3))
    # once the first has ended, a new one may start
    with product_db.connect() as conn:
        accounts.cancel(conn, first, T0 + timedelta(days=4))
        accounts.subscribe(conn, account, "premium", T0 + timedelta(days=4))
    assert (
        count(
            product_db,
            "SELECT count(*) FROM product.subscriptions WHERE account_id = %s "
            "AND status <> 'canceled'",
            account,
        )
        == 1
    )


def test_a_plan_without_a_price_in_the_currency_is_refused(product_db: PostgresResource) -> None:
    account = new_account(product_db)
    with (
        pytest.raises(RuleViolation, match="subscriptions_plan_priced_in_currency"),
        product_db.connect() as conn,
    ):
        accounts.subscribe(conn, account, "standard", T0, currency="CHF")


def test_status_lifecycle_is_enforced(product_db: PostgresResource) -> None:
    account = new_account(product_db)
    with product_db.connect() as conn:
        sub = accounts.subscribe(conn, account, "basic", T0)
        accounts.cancel(conn, sub, T0 + timedelta(days=1))
    with (
        pytest.raises(RuleViolation, match="subscriptions_status_lifecycle"),
        product_db.connect() as conn,
        named_rules(),
    ):
        conn.execute(
            "UPDATE product.subscriptions SET status = 'active', ended_at = NULL, "
            "end_reason = NULL WHERE subscription_id = %s",
            (sub,),
        )


def open_invoice(db: PostgresResource, currency: str = "EUR", amount: int = 1399) -> int:
    account = new_account(db, "DE", currency)
    with db.connect() as conn:
        sub = accounts.subscribe(conn, account, "standard", T0)
        return conn.execute(
            "INSERT INTO product.invoices (subscription_id, account_id, currency, kind, status, "
            "period_start, period_end, billing_date, amount_due_cents) VALUES "
            "(%s, %s, %s, 'signup', 'open', %s, %s, %s, %s) RETURNING invoice_id",
            (sub, account, currency, T0, T0 + timedelta(days=30), T0.date(), amount),
        ).fetchone()[0]


def note(invoice: int, **changes: object) -> PaymentNotification:
    values = dict(
        idempotency_key=f"evt-{uuid.uuid4().hex}",
        invoice_id=invoice,
        amount_cents=1399,
        currency="EUR",
        status="succeeded",
        at=T0,
    )
    values.update(changes)
    return PaymentNotification(**values)


def test_negative_payment_and_currency_mismatch_are_refused(product_db: PostgresResource) -> None:
    invoice = open_invoice(product_db)
    with (
        pytest.raises(RuleViolation, match="payments_amount_non_negative"),
        product_db.connect() as conn,
    ):
        accounts.record_payment(conn, note(invoice, amount_cents=-5))
    with (
        pytest.raises(RuleViolation, match="payments_currency_matches_invoice"),
        product_db.connect() as conn,
    ):
        accounts.record_payment(conn, note(invoice, currency="USD"))
    assert (
        count(product_db, "SELECT count(*) FROM product.payments WHERE invoice_id = %s", invoice)
        == 0
    )
    assert (
        count(
            product_db,
            "SELECT count(*) FROM product.invoices WHERE invoice_id = %s AND status = 'open'",
            invoice,
        )
        == 1
    )


def test_a_redelivered_notification_is_a_no_op_and_a_conflicting_one_refused(
    product_db: PostgresResource,
) -> None:
    invoice = open_invoice(product_db)
    payment = note(invoice)
    with product_db.connect() as conn:
        assert accounts.record_payment(conn, payment) is True
    with product_db.connect() as conn:
        assert accounts.record_payment(conn, payment) is False  # re-delivered
    with (
        pytest.raises(RuleViolation, match="payments_idempotency_key_unique"),
        product_db.connect() as conn,
    ):
        accounts.record_payment(
            conn, note(invoice, idempotency_key=payment.idempotency_key, amount_cents=1)
        )
    # a raw duplicate insert is refused by the database itself
    with (
        pytest.raises(psycopg.errors.UniqueViolation, match="payments_idempotency_key_unique"),
        product_db.connect() as conn,
    ):
        conn.execute(
            "INSERT INTO product.payments (invoice_id, currency, amount_cents, status, "
            "attempt, idempotency_key, created_at) VALUES (%s, 'EUR', 1399, 'succeeded', 1, "
            "%s, now())",
            (invoice, payment.idempotency_key),
        )
    assert (
        count(product_db, "SELECT count(*) FROM product.payments WHERE invoice_id = %s", invoice)
        == 1
    )
    assert (
        count(
            product_db,
            "SELECT count(*) FROM product.invoices WHERE invoice_id = %s AND status = 'paid'",
            invoice,
        )
        == 1
    )


def test_upgrade_is_prorated_and_downgrade_refunds_the_difference(
    product_db: PostgresResource,
) -> None:
    account = new_account(product_db)
    with product_db.connect() as conn:
        sub = accounts.subscribe(conn, account, "basic", T0)
        period_end = accounts.add_months(T0, 1)
        halfway = T0 + (period_end - T0) / 2
        upgraded = accounts.change_plan(conn, sub, "premium", halfway)
        invoice = conn.execute(
            "SELECT invoice_id, amount_due_cents FROM product.invoices "
            "WHERE subscription_id = %s AND kind = 'proration'",
            (upgraded,),
        ).fetchone()
        lines = conn.execute(
            "SELECT kind, amount_cents FROM product.invoice_lines WHERE "
            "invoice_id = %s ORDER BY line_no",
            (invoice[0],),
        ).fetchall()
    assert lines == [("proration_credit", -400), ("proration_charge", 1250)]  # 799/2, 2499/2
    assert invoice[1] == 850
    with product_db.connect() as conn:
        accounts.record_payment(conn, note(invoice[0], currency="USD", amount_cents=850))
        downgraded = accounts.change_plan(
            conn,
            upgraded,
            "basic",
            period_end - timedelta(seconds=(period_end - T0).total_seconds() / 4),
        )
        refund = conn.execute(
            "SELECT r.amount_cents FROM product.refunds r JOIN product.payments p "
            "USING (payment_id) WHERE p.invoice_id = %s",
            (invoice[0],),
        ).fetchone()
        live = conn.execute(
            "SELECT subscription_id, plan_id FROM product.subscriptions WHERE "
            "account_id = %s AND status <> 'canceled'",
            (account,),
        ).fetchall()
    assert refund == (425,)  # a quarter of the period: (2499 - 799) / 4
    assert live == [(downgraded, "basic")]


def test_a_refund_above_the_payment_is_refused(product_db: PostgresResource) -> None:
    invoice = open_invoice(product_db)
    payment = note(invoice)
    with product_db.connect() as conn:
        accounts.record_payment(conn, payment)
        payment_id = conn.execute(
            "SELECT payment_id FROM product.payments WHERE idempotency_key = %s",
            (payment.idempotency_key,),
        ).fetchone()[0]
    with (
        pytest.raises(RuleViolation, match="refunds_within_payment"),
        product_db.connect() as conn,
        named_rules(),
    ):
        conn.execute(
            "INSERT INTO product.refunds (payment_id, currency, amount_cents, reason, "
            "idempotency_key, created_at) VALUES (%s, 'EUR', 1400, 'x', %s, now())",
            (payment_id, uuid.uuid4().hex),
        )
