"""The service's PostgreSQL catalog schema as an asset, so publishing depends on it in lineage."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from resources.postgres import PostgresResource


@asset(group_name="catalog", compute_kind="postgres")
def catalog_schema(context: AssetExecutionContext, postgres: PostgresResource) -> MaterializeResult:
    """Applies schema/*.sql to the catalog database. Every statement is idempotent, so this is
    safe to re-run and is how a new environment gets its tables."""
    applied = postgres.apply_schema()
    with postgres.connect() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'catalog' ORDER BY table_name"
            )
        ]
    context.log.info(f"catalog tables: {tables}")
    return MaterializeResult(
        metadata={
            "ddl_files": MetadataValue.json(applied),
            "tables": MetadataValue.json(tables),
            "table_count": len(tables),
        }
    )


ASSETS = [catalog_schema]
