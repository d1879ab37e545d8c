"""`netflix-assets train` chooses its partition without Spark: the JVM-free reader must agree
with the interactions Spark trains on (started sessions with a user, and imported ratings)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from netflix_assets import train
from netflix_assets.recs.imports import import_ratings
from schema import tables
from spark_jobs import delta_io
from spark_jobs.features import NoInteractions, load_interactions

pytestmark = pytest.mark.stack

SESSION_SCHEMA = T.StructType(  # what load_interactions reads of silver_playback_sessions
    [
        T.StructField("user_id", T.StringType()),
        T.StructField("title_id", T.StringType()),
        T.StructField("session_start", T.TimestampType()),
        T.StructField("started", T.BooleanType()),
        T.StructField("completed", T.BooleanType()),
        T.StructField("session_date", T.DateType()),
    ]
)


def _sessions(spark, object_store, rows) -> None:
    frame = spark.createDataFrame([(*r, r[2].date()) for r in rows], SESSION_SCHEMA)
    path = object_store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)
    for day in sorted({r[2].date() for r in rows}):
        delta_io.replace_day(frame.where(frame.session_date == day), path, "session_date", day)


def _spark_newest(spark, object_store) -> date:
    interactions, _ = load_interactions(spark, object_store)
    return interactions.agg(F.max("ts")).first()[0].date()


def test_newest_interaction_skips_unstarted_and_anonymous_sessions(spark, object_store) -> None:
    _sessions(
        spark,
        object_store,
        [
            ("u1", "a", datetime(2026, 11, 9, 20), True, True),
            ("u1", "b", datetime(2026, 11, 12, 8), False, False),
            (None, "c", datetime(2026, 11, 13, 8), True, False),
        ],
    )
    assert train.newest_interaction(object_store) == date(2026, 11, 9)
    assert train.newest_interaction(object_store) == _spark_newest(spark, object_store)


def test_newest_interaction_reads_imported_ratings_too(spark, object_store, tmp_path) -> None:
    _sessions(
        spark,
        object_store,
        [("u1", "a", datetime(2026, 11, 9, 20), True, True)],
    )
    ratings = tmp_path / "ratings.csv"
    newest = int(datetime(2026, 11, 14, 23, 30, tzinfo=UTC).timestamp())
    ratings.write_text(f"userId,movieId,rating,timestamp\n1,10,4.0,1000000000\n2,11,3.5,{newest}\n")
    import_ratings(ratings, object_store)
    assert train.newest_interaction(object_store) == _spark_newest(spark, object_store)
    assert train.newest_interaction(object_store) > date(2026, 11, 9)


def test_no_interactions_names_what_to_run(object_store) -> None:
    with pytest.raises(NoInteractions, match="import-ratings"):
        train.newest_interaction(object_store)


def test_only_a_local_driver_gets_the_first_jit_tier() -> None:
    from resources.spark import SparkResource

    option = "spark.driver.extraJavaOptions"
    local = train.driver_options(SparkResource(master="local[2]"))
    assert local[option] == train.LOCAL_DRIVER_JAVA_OPTIONS
    assert option not in train.driver_options(SparkResource(master="spark://spark:7077"))
    own = SparkResource(master="local[*]", extra_conf={option: "-Xss4m"})
    assert train.driver_options(own)[option] == "-Xss4m"


def test_the_ranker_trains_on_one_thread() -> None:
    import numpy as np
    import pandas as pd

    from netflix_assets.recs import ranker

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, len(ranker.FEATURES))), columns=ranker.FEATURES)
    frame["label"] = (rng.random(400) < 0.1).astype(int)
    frame["group"] = np.repeat(np.arange(8), 50)
    assert ranker.train(frame, rounds=2).params["num_threads"] == 1
