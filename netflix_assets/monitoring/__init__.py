"""Monitoring cores without Dagster: the Alertmanager webhook receiver and the platform exporter."""
