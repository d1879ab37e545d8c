"""Feature assets through Dagster: Delta tables as of a date, and the online copy in Redis."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest
from dagster import DagsterInstance, materialize
from pyspark.sql import types as T

from assets import recs
from spark_jobs import delta_io
from spark_jobs.paths import table_uri

pytestmark = pytest.mark.stack

AS_OF = date(2026, 11, 10)
SESSION_SCHEMA = T.StructType(
    [
        T.StructField("user_id", T.StringType()),
        T.StructField("title_id", T.StringType()),
        T.StructField("session_start", T.TimestampType()),
        T.StructField("started", T.BooleanType()),
        T.StructField("completed", T.BooleanType()),
        T.StructField("failed", T.BooleanType()),
        T.StructField("device", T.StringType()),
        T.StructField("watched_ms", T.LongType()),
        T.StructField("stall_ms", T.LongType()),
        T.StructField("startup_ms", T.LongType()),
        T.StructField("session_date", T.DateType()),
    ]
)


def test_features_and_online_copy(spark, spark_resource, redis_resource, object_store) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    rows = [
        (user, "a", datetime(2026, 11, 9, 20), True, True, False, "tv", 3_600_000, 0, 900),
        (user, "b", datetime(2026, 11, 8, 20), True, False, False, "ios", 600_000, 60_000, 1500),
        ("other", "a", datetime(2026, 11, 9, 21), True, False, False, "web", 60_000, 0, 800),
        (user, "c", datetime(2026, 11, 10, 9), True, True, False, "tv", 3_600_000, 0, 700),
    ]
    frame = spark.createDataFrame([(*r, r[2].date()) for r in rows], SESSION_SCHEMA)
    path = table_uri(object_store, "silver_playback_sessions")
    for day in sorted({r[2].date() for r in rows}):
        delta_io.replace_day(frame.where(frame.session_date == day), path, "session_date", day)
    result = materialize(
        recs.ASSETS,
        partition_key=AS_OF.isoformat(),
        instance=DagsterInstance.ephemeral(),
        resources={"spark": spark_resource, "object_store": object_store, "redis": redis_resource},
    )
    assert result.success
    users = {
        r["user_id"]: r
        for r in spark.read.format("delta").load(table_uri(object_store, "features_user")).collect()
    }
    assert set(users) == {user, "other"}
    mine = users[user]
    assert mine["u_interactions_all"] == 2  # the session on AS_OF itself is the future
    assert mine["u_completion_rate"] == pytest.approx(0.5)
    assert mine["u_tv_share"] == pytest.approx(0.5) and mine["u_mobile_share"] == pytest.approx(0.5)
    titles = spark.read.format("delta").load(table_uri(object_store, "features_title"))
    assert {r["title_id"] for r in titles.collect()} == {"a", "b"}

    client = redis_resource.client()
    key = f"{recs.ONLINE_PREFIX}:user:{user}"
    try:
        online = client.hgetall(key)
        assert float(online[b"u_interactions_all"]) == 2.0
        assert 0 < client.ttl(key) <= recs.ONLINE_TTL_S
        assert client.hget(f"{recs.ONLINE_PREFIX}:meta", "as_of") == AS_OF.isoformat().encode()
    finally:
        client.delete(key, f"{recs.ONLINE_PREFIX}:user:other")


def test_features_without_any_interactions_fail_clearly(spark_resource, object_store) -> None:
    result = materialize(
        [recs.recommendation_features],
        partition_key=AS_OF.isoformat(),
        instance=DagsterInstance.ephemeral(),
        resources={"spark": spark_resource, "object_store": object_store},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "no interactions" in failure.event_specific_data.error.message
