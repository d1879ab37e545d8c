"""Where each lake table lives below the object store root: one name per table everywhere."""

from __future__ import annotations

from resources.object_store import ObjectStoreResource

LAKE_TABLES = (
    "bronze_viewing_events",
    "silver_viewing_events",
    "silver_quarantine",
    "silver_playback_sessions",
    "gold_title_daily",
    "gold_qoe_daily",
    "gold_user_daily",
    "imported_interactions",
    "features_user",
    "features_title",
    "features_user_title",
    # snapshots of the product database (assets/product.py) and the gold tables built on them
    "product_accounts",
    "product_profiles",
    "product_subscriptions",
    "product_invoices",
    "product_plan_prices",
    "gold_revenue_daily",
    "gold_engagement_by_plan",
    # experiments (assets/experiments.py)
    "experiment_exposures",
    "experiment_exposures_quarantine",
    "gold_experiment_daily",
    "experiment_results",
)


def table_uri(store: ObjectStoreResource, name: str) -> str:
    """The table's URI; s3:// becomes s3a:// because that is the scheme Hadoop's S3 client reads."""
    if name not in LAKE_TABLES:
        raise KeyError(f"unknown lake table {name!r}; known: {LAKE_TABLES}")
    uri = store.uri(f"lake/{name}")
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri
