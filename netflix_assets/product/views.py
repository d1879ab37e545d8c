"""The product's materialized views and their refresh.

Each view is a full re-aggregation of its tables, refreshed CONCURRENTLY (readers are never
blocked; the new contents are diffed into the old by the view's unique index). The refresh
runs with a work_mem meant for a batch job: with the default 4MB the planner judged a sort of
viewing_history too dear and read it instead through each day partition's profile index,
merged in profile order (160 s for profile_engagement over 10M rows, in a run where one
sequential scan and sort took 43-53 s with this setting; 58 s against 9 s at 3M rows).
docs/PRODUCT.md has the figures."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

VIEWS = ("revenue_daily", "top_titles_by_country", "profile_engagement")
REFRESH_WORK_MEM = "256MB"
"""Per sort or hash of the refresh's plan, for this transaction only."""


class UnknownView(ValueError):
    """A name that is not one of VIEWS."""


def refresh(conn: psycopg.Connection, view: str) -> float:
    """REFRESH MATERIALIZED VIEW CONCURRENTLY product.<view> in the caller's transaction (it
    takes effect at commit); returns the seconds it took."""
    if view not in VIEWS:
        raise UnknownView(f"{view!r} is not a product view; the views are {', '.join(VIEWS)}")
    conn.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(REFRESH_WORK_MEM)))
    started = time.perf_counter()
    conn.execute(
        sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY product.{}").format(sql.Identifier(view))
    )
    return time.perf_counter() - started
