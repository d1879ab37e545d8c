"""The lake's Delta tables: one LakeTable per table, named like the asset that writes it.

Every reader and writer addresses a table through these constants (`tables.GOLD_TITLE_DAILY`),
never through a string, so renaming a table is one line here; a test checks that each table is
written by an asset (or declared as an external asset) whose key is the table's name, so the
lineage in the UI has no holes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LakeTable:
    name: str

    @property
    def key(self) -> str:
        """The table's folder below the object store root."""
        return f"lake/{self.name}"

    @property
    def asset_key_path(self) -> list[str]:
        """The key of the asset that writes this table."""
        return [self.name]


BRONZE_VIEWING_EVENTS = LakeTable("bronze_viewing_events")
SILVER_VIEWING_EVENTS = LakeTable("silver_viewing_events")
SILVER_QUARANTINE = LakeTable("silver_quarantine")
SILVER_PLAYBACK_SESSIONS = LakeTable("silver_playback_sessions")
GOLD_TITLE_DAILY = LakeTable("gold_title_daily")
GOLD_QOE_DAILY = LakeTable("gold_qoe_daily")
GOLD_USER_DAILY = LakeTable("gold_user_daily")
GOLD_TITLE_COUNTRY_DAILY = LakeTable("gold_title_country_daily")
IMPORTED_INTERACTIONS = LakeTable("imported_interactions")
FEATURES_USER = LakeTable("features_user")
FEATURES_TITLE = LakeTable("features_title")
FEATURES_USER_TITLE = LakeTable("features_user_title")
# snapshots of the product database (assets/product.py) and the gold tables built on them
PRODUCT_ACCOUNTS = LakeTable("product_accounts")
PRODUCT_PROFILES = LakeTable("product_profiles")
PRODUCT_SUBSCRIPTIONS = LakeTable("product_subscriptions")
PRODUCT_INVOICES = LakeTable("product_invoices")
PRODUCT_PLAN_PRICES = LakeTable("product_plan_prices")
GOLD_REVENUE_DAILY = LakeTable("gold_revenue_daily")
GOLD_ENGAGEMENT_BY_PLAN = LakeTable("gold_engagement_by_plan")
# experiments (assets/experiments.py)
EXPERIMENT_EXPOSURES = LakeTable("experiment_exposures")
EXPERIMENT_EXPOSURES_QUARANTINE = LakeTable("experiment_exposures_quarantine")
GOLD_EXPERIMENT_DAILY = LakeTable("gold_experiment_daily")
EXPERIMENT_RESULTS = LakeTable("experiment_results")

ALL: tuple[LakeTable, ...] = tuple(v for v in list(globals().values()) if isinstance(v, LakeTable))
BY_NAME: dict[str, LakeTable] = {t.name: t for t in ALL}


def by_name(name: str) -> LakeTable:
    """The table called `name`, or KeyError listing the tables there are."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown lake table {name!r}; known: {sorted(BY_NAME)}") from None
