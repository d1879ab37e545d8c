"""Helpers that run beside the Flink job (the Redis sink for the dashboards)."""
