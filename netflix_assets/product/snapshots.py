"""Snapshots of the product tables as Arrow tables, for the lake (Delta) where Spark and
`netflix-assets query` join them with the viewing data. Each is one consistent read (one
REPEATABLE READ transaction for all of them), with explicit Arrow types so an empty table
still has its schema."""

from __future__ import annotations

import psycopg
import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

SNAPSHOTS: dict[str, tuple[str, pa.Schema]] = {
    "product_accounts": (
        "SELECT account_id, country::text, currency::text, created_at FROM product.accounts",
        pa.schema(
            [
                ("account_id", pa.string()),
                ("country", pa.string()),
                ("currency", pa.string()),
                ("created_at", TS),
            ]
        ),
    ),
    "product_profiles": (
        "SELECT profile_id, account_id, maturity_level, language, created_at FROM product.profiles",
        pa.schema(
            [
                ("profile_id", pa.string()),
                ("account_id", pa.string()),
                ("maturity_level", pa.string()),
                ("language", pa.string()),
                ("created_at", TS),
            ]
        ),
    ),
    "product_subscriptions": (
        "SELECT subscription_id, account_id, plan_id, currency::text, status, started_at, "
        "ended_at, end_reason, trial_end, current_period_start, current_period_end, "
        "replaces_subscription_id FROM product.subscriptions",
        pa.schema(
            [
                ("subscription_id", pa.int64()),
                ("account_id", pa.string()),
                ("plan_id", pa.string()),
                ("currency", pa.string()),
                ("status", pa.string()),
                ("started_at", TS),
                ("ended_at", TS),
                ("end_reason", pa.string()),
                ("trial_end", TS),
                ("current_period_start", TS),
                ("current_period_end", TS),
                ("replaces_subscription_id", pa.int64()),
            ]
        ),
    ),
    "product_invoices": (
        "SELECT invoice_id, subscription_id, account_id, currency::text, kind, status, "
        "period_start, period_end, billing_date, amount_due_cents, paid_at "
        "FROM product.invoices",
        pa.schema(
            [
                ("invoice_id", pa.int64()),
                ("subscription_id", pa.int64()),
                ("account_id", pa.string()),
                ("currency", pa.string()),
                ("kind", pa.string()),
                ("status", pa.string()),
                ("period_start", TS),
                ("period_end", TS),
                ("billing_date", pa.date32()),
                ("amount_due_cents", pa.int64()),
                ("paid_at", TS),
            ]
        ),
    ),
    "product_plan_prices": (
        "SELECT plan_id, currency::text, amount_cents FROM product.plan_prices",
        pa.schema(
            [("plan_id", pa.string()), ("currency", pa.string()), ("amount_cents", pa.int64())]
        ),
    ),
}
"""Lake table name -> (query, Arrow schema)."""


def read_snapshots(conn: psycopg.Connection) -> dict[str, pa.Table]:
    """Every snapshot from one REPEATABLE READ transaction (the caller's connection must not
    be inside a transaction yet), so invoices never name a subscription the snapshot lacks."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    tables = {}
    for name, (query, schema) in SNAPSHOTS.items():
        cursor = conn.execute(query)
        columns = list(zip(*cursor.fetchall(), strict=True)) or [[] for _ in schema.names]
        tables[name] = pa.table(
            [
                pa.array(values, type=field.type)
                for values, field in zip(columns, schema, strict=True)
            ],
            schema=schema,
        )
    return tables
