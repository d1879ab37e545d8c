"""Plain clients of the services (object store, Kafka, Redis, PostgreSQL): no Dagster here; the
resources in resources/ wrap them for assets, and the serving process, the CLI and the Spark and
Flink programs use them directly."""
