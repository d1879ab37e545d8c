"""The QoE contract shared by the Flink job (streaming/qoe_sql.py) and the lake's recomputation
(spark_jobs/qoe_windows.py): both must cut the same windows and name the same dimensions, or the
stream-vs-lake reconciliation compares different things."""

STARTUP_PERCENTILES = {"startup_p50_ms": 0.5, "startup_p95_ms": 0.95}
"""Startup percentiles per QoE window; continuous (linear interpolation) in both engines."""

UNKNOWN_DIMENSION = "unknown"
UNKNOWN_COUNTRY = "ZZ"
"""What a missing device or CDN, and a missing country, are counted as."""

QOE_WINDOW_MS = 300_000
VIEWERS_WINDOW_MS = 60_000
VIEWERS_SLIDE_MS = 10_000
"""Tumbling QoE windows; hopping concurrent-viewer windows (size, slide)."""
