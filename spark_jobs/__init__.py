"""Spark transformations as plain DataFrame -> DataFrame functions, plus spark-submit entries."""
