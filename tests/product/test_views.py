"""The materialized views' refresh on the real PostgreSQL: every view the migrations make is
known, a refresh takes effect with its transaction, and a name that is not a view is refused
before anything runs."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest
from test_viewing_load import sessions

from netflix_assets.product import viewing, views

pytestmark = pytest.mark.stack
DAY = date(2026, 4, 2)


def engagement(conn: psycopg.Connection, profile: str) -> tuple | None:
    return conn.execute(
        "SELECT sessions, titles, last_viewed_at IS NOT NULL FROM product.profile_engagement "
        "WHERE profile_id = %s",
        (profile,),
    ).fetchone()


def test_views_names_every_materialized_view_of_the_product(product_dsn: str) -> None:
    with psycopg.connect(product_dsn) as conn:
        made = {
            r[0]
            for r in conn.execute(
                "SELECT matviewname FROM pg_matviews WHERE schemaname = 'product'"
            )
        }
    assert made == set(views.VIEWS)


def test_a_refresh_takes_effect_with_its_transaction(product_dsn: str) -> None:
    with psycopg.connect(product_dsn) as conn:
        viewing.load_day(conn, DAY, sessions(DAY, ["v1", "v2", "v3"], profile="p-views"))
    with psycopg.connect(product_dsn) as conn:
        assert views.refresh(conn, "profile_engagement") >= 0
        assert conn.execute("SHOW work_mem").fetchone()[0] == views.REFRESH_WORK_MEM
        conn.rollback()
        assert engagement(conn, "p-views") is None  # rolled back with its transaction
        assert conn.execute("SHOW work_mem").fetchone()[0] != views.REFRESH_WORK_MEM
    with psycopg.connect(product_dsn) as conn:
        views.refresh(conn, "profile_engagement")
    with psycopg.connect(product_dsn) as conn:
        assert engagement(conn, "p-views") == (3, 1, True)


def test_a_name_that_is_not_a_view_is_refused_before_anything_runs(product_dsn: str) -> None:
    with psycopg.connect(product_dsn) as conn:
        with pytest.raises(views.UnknownView, match="'accounts' is not a product view"):
            views.refresh(conn, "accounts")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
