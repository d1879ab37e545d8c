"""DDL for the service's PostgreSQL catalog and JSON Schemas for the events on Kafka."""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent


def sql_files() -> list[Path]:
    """The catalog DDL files, applied in name order; every statement is idempotent."""
    return sorted(SCHEMA_DIR.glob("*.sql"))
