"""netflix-assets: the Dagster code location of the streaming service's data platform."""
