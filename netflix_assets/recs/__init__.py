"""Recommendation cores without Dagster, Spark or Redis: ratings files, evaluation, models."""
