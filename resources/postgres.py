"""PostgreSQL: the service's catalog database (titles, renditions, manifests, quality)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets import settings
from netflix_assets.product import migrations
from schema import sql_files


class PostgresResource(ConfigurableResource):
    """Connections to the catalog database. A connection is a transaction: it commits when the
    `with` block ends cleanly and rolls back on an error, so a failed publish leaves nothing."""

    dsn: str = Field(
        default=settings.postgres_dsn(),
        description="libpq DSN or URL (env NETFLIX_ASSETS_POSTGRES_DSN).",
    )
    connect_timeout_s: int = 10

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.dsn, connect_timeout=self.connect_timeout_s) as conn:
            yield conn

    def apply_schema(self) -> list[str]:
        """Apply the pending versioned migrations (schema/migrations, netflix_assets.product
        .migrations); returns every migration file name, applied now or before."""
        migrations.migrate(self.dsn)
        return [path.name for path in sql_files()]
