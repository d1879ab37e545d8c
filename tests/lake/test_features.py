"""Recommendation features from hand-made interactions: exact values, and no look-ahead."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from spark_jobs import features

AS_OF = date(2026, 11, 10)


@pytest.fixture(scope="module")
def interactions(spark):
    rows = [
        ("u1", "a", datetime(2026, 11, 9, 20), 2.0, "lake"),  # 1 day before
        ("u1", "b", datetime(2026, 11, 1, 20), 1.0, "lake"),  # 9 days before
        ("u1", "a", datetime(2026, 10, 1, 20), 1.0, "lake"),  # 40 days before
        ("u2", "a", datetime(2026, 11, 8, 10), 1.0, "lake"),
        ("u2", "c", datetime(2026, 11, 10, 0), 2.0, "lake"),  # on the date: the future
        ("u3", "c", datetime(2026, 11, 12, 0), 2.0, "lake"),  # after the date
    ]
    return spark.createDataFrame(rows, features.INTERACTION_SCHEMA)


def by(df, key):
    return {r[key]: r.asDict() for r in df.collect()}


def test_user_features_are_point_in_time(interactions) -> None:
    users = by(features.user_features(interactions, None, AS_OF), "user_id")
    assert set(users) == {"u1", "u2"}  # u3 only acts after the date
    u1 = users["u1"]
    assert (u1["u_interactions_7d"], u1["u_interactions_28d"], u1["u_interactions_all"]) == (
        1,
        2,
        3,
    )
    assert u1["u_titles_all"] == 2 and u1["u_days_since_last"] == 1
    assert u1["u_mean_weight"] == pytest.approx(4 / 3)
    assert users["u2"]["u_interactions_all"] == 1  # the event at midnight of AS_OF is excluded
    assert all(name in u1 for name in features.FEATURES if name.startswith("u_"))


def test_title_and_pair_features(interactions) -> None:
    titles = by(features.title_features(interactions, None, AS_OF), "title_id")
    assert set(titles) == {"a", "b"}  # c is only seen from AS_OF on
    assert titles["a"]["t_interactions_all"] == 3 and titles["a"]["t_users_all"] == 2
    assert titles["a"]["t_interactions_7d"] == 2 and titles["a"]["t_popularity_rank"] == 1
    assert titles["a"]["t_trend"] == pytest.approx(2 / max(2 / 4, 1))
    pairs = {
        (r["user_id"], r["title_id"]): r
        for r in features.user_title_features(interactions, AS_OF).collect()
    }
    assert pairs[("u1", "a")]["ut_interactions"] == 2
    assert pairs[("u1", "a")]["ut_share_of_user"] == pytest.approx(2 / 3)
    assert pairs[("u1", "a")]["ut_max_weight"] == 2.0
    assert ("u2", "c") not in pairs


def test_ratings_become_interactions(spark) -> None:
    ratings = pd.DataFrame(
        {"user_id": ["ml:1"], "title_id": ["ml:31"], "rating": [4.0], "ts": [1_000_000_000]}
    )
    row = features.interactions_from_ratings(spark, ratings, "ml").collect()[0]
    assert (row["user_id"], row["title_id"], row["weight"], row["source"]) == (
        "ml:1",
        "ml:31",
        0.8,
        "ml",
    )
    assert row["ts"] == datetime(2001, 9, 9, 1, 46, 40)


def test_at_least_thirty_documented_features() -> None:
    assert len(features.FEATURES) >= 30
