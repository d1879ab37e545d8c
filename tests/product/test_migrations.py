"""The migrations runner against the stack's PostgreSQL: from empty, re-run, edits refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from netflix_assets.product import migrations
from schema import MIGRATIONS_DIR

pytestmark = pytest.mark.stack


def test_discover_refuses_bad_names_and_repeated_versions(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "1_b.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match=r"not named NNNN_name\.sql"):
        migrations.discover(tmp_path)
    (tmp_path / "1_b.sql").rename(tmp_path / "0001_b.sql")
    with pytest.raises(migrations.MigrationError, match="share version 1"):
        migrations.discover(tmp_path)


def test_applies_from_empty_then_re_runs_as_a_no_op(empty_dsn: str) -> None:
    files = [m.filename for m in migrations.discover()]
    assert files[:5] == [
        "0001_catalog.sql",
        "0002_product.sql",
        "0003_views.sql",
        "0004_subscriptions_hot_renewals.sql",
        "0005_foreign_key_indexes.sql",
    ]
    assert {s.state for s in migrations.status(empty_dsn)} == {"pending"}
    assert migrations.migrate(empty_dsn) == files
    assert migrations.migrate(empty_dsn) == []
    states = migrations.status(empty_dsn)
    assert [(s.version, s.state) for s in states] == [
        (m.version, "applied") for m in migrations.discover()
    ]
    with psycopg.connect(empty_dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_schema IN ('catalog', 'product')"
            )
        }
        views = {r[0] for r in conn.execute("SELECT matviewname FROM pg_matviews")}
        plans = conn.execute("SELECT count(*) FROM product.plans").fetchone()[0]
    assert {
        "catalog.titles",
        "product.accounts",
        "product.subscriptions",
        "product.payments",
        "product.viewing_history",
        "catalog.episodes",
    } <= tables
    assert views == {"revenue_daily", "top_titles_by_country", "profile_engagement"}
    assert plans == 3


def test_an_edited_applied_migration_is_refused(product_dsn: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    edited = copy / "0002_product.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(migrations.MigrationError, match=r"0002_product\.sql was edited"):
        migrations.migrate(product_dsn, migrations.discover(copy))
    states = {s.version: s.state for s in migrations.status(product_dsn, migrations.discover(copy))}
    assert states[2] == "edited"


def test_a_failing_migration_leaves_nothing(product_dsn: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    (copy / "9999_broken.sql").write_text(
        "CREATE TABLE product.half_written (x int);\nSELECT * FROM no_such_table;\n"
    )
    with pytest.raises(migrations.MigrationError, match=r"9999_broken\.sql failed and was rolled"):
        migrations.migrate(product_dsn, migrations.discover(copy))
    with psycopg.connect(product_dsn) as conn:
        assert conn.execute("SELECT to_regclass('product.half_written')").fetchone()[0] is None
        assert not conn.execute(
            "SELECT 1 FROM public.schema_migrations WHERE version = 9999"
        ).fetchone()
