"""DDL for the service's PostgreSQL database (versioned migrations) and JSON Schemas for the
events on Kafka."""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = SCHEMA_DIR / "migrations"
"""One plain SQL file per version, NNNN_name.sql, applied by netflix_assets.product.migrations."""


def sql_files() -> list[Path]:
    """The migration files in version order."""
    return sorted(MIGRATIONS_DIR.glob("*.sql"))
