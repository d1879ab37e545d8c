"""The product database's schema as an asset: the versioned migrations of schema/migrations, so
publishing, billing and the viewing history depend on it in lineage."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from netflix_assets.product import migrations
from resources.postgres import PostgresResource


@asset(group_name="catalog", compute_kind="postgres")
def catalog_schema(context: AssetExecutionContext, postgres: PostgresResource) -> MaterializeResult:
    """Applies the pending migrations of schema/migrations (each in one transaction, refused
    when an applied file was edited); a re-run with nothing pending changes nothing."""
    applied = migrations.migrate(postgres.conninfo())
    states = migrations.status(postgres.conninfo())
    with postgres.connect() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_schema IN ('catalog', 'product') AND table_type = 'BASE TABLE' "
                "ORDER BY 1"
            )
        ]
    context.log.info(f"migrations applied now: {applied or 'none'}; tables: {tables}")
    return MaterializeResult(
        metadata={
            "applied_now": MetadataValue.json(applied),
            "migrations": MetadataValue.md(
                "| version | name | state |\n|---|---|---|\n"
                + "\n".join(f"| {s.version:04d} | {s.name} | {s.state} |" for s in states)
            ),
            "schema_version": max((s.version for s in states if s.state == "applied"), default=0),
            "tables": MetadataValue.json(tables),
            "table_count": len(tables),
        }
    )


ASSETS = [catalog_schema]
