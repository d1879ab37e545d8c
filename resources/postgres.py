"""PostgreSQL as a Dagster resource: the plain connection factory
(netflix_assets/clients/postgres.py) plus applying the schema's migrations."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets.clients.postgres import PostgresOps
from netflix_assets.product import migrations
from schema import sql_files


class PostgresResource(PostgresOps, ConfigurableResource):
    """Connections to the product database (netflix_assets/clients/postgres.py)."""

    dsn: str = Field(
        default="",
        description="libpq DSN or URL with its credentials. Empty: env "
        "NETFLIX_ASSETS_POSTGRES_DSN, else the local stack's database as the application role "
        "(read when connecting, so no password sits in the resource's visible config).",
    )
    connect_timeout_s: int = 10

    def apply_schema(self) -> list[str]:
        """Apply the pending versioned migrations (schema/migrations, netflix_assets.product
        .migrations); returns every migration file name, applied now or before."""
        migrations.migrate(self.conninfo())
        return [path.name for path in sql_files()]
