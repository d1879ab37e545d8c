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
        default="",
        description="libpq DSN or URL with its credentials. Empty: env "
        "NETFLIX_ASSETS_POSTGRES_DSN, else the local stack's database as the application role "
        "(read when connecting, so no password sits in the resource's visible config).",
    )
    connect_timeout_s: int = 10

    def conninfo(self) -> str:
        """The DSN to connect with: the configured one, else settings' (env or local stack)."""
        return self.dsn or settings.postgres_dsn()

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.conninfo(), connect_timeout=self.connect_timeout_s) as conn:
            yield conn

    def apply_schema(self) -> list[str]:
        """Apply the pending versioned migrations (schema/migrations, netflix_assets.product
        .migrations); returns every migration file name, applied now or before."""
        migrations.migrate(self.conninfo())
        return [path.name for path in sql_files()]
