"""Feature assets through Dagster: Delta tables as of a date, and the online copy in Redis."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest
from dagster import DagsterInstance, materialize
from pyspark.sql import types as T

from assets import recs
from schema import tables
from spark_jobs import delta_io

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
    path = object_store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)
    for day in sorted({r[2].date() for r in rows}):
        delta_io.replace_day(frame.where(frame.session_date == day), path, "session_date", day)
    result = materialize(
        [recs.recommendation_features, recs.online_features],
        partition_key=AS_OF.isoformat(),
        instance=DagsterInstance.ephemeral(),
        resources={"spark": spark_resource, "object_store": object_store, "redis": redis_resource},
    )
    assert result.success
    for written in result.asset_materializations_for_node("recommendation_features"):
        table = spark.read.format("delta").load(str(written.metadata["uri"].value))
        day_rows = table.where(table.as_of == AS_OF).count()
        assert written.metadata["rows"].value == day_rows > 0, written.asset_key
    users = {
        r["user_id"]: r
        for r in spark.read.format("delta")
        .load(object_store.table_uri(tables.FEATURES_USER))
        .collect()
    }
    assert set(users) == {user, "other"}
    mine = users[user]
    assert mine["u_interactions_all"] == 2  # the session on AS_OF itself is the future
    assert mine["u_completion_rate"] == pytest.approx(0.5)
    assert mine["u_tv_share"] == pytest.approx(0.5) and mine["u_mobile_share"] == pytest.approx(0.5)
    titles = spark.read.format("delta").load(object_store.table_uri(tables.FEATURES_TITLE))
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


def ranked_in(result) -> bool:
    return result.asset_materializations_for_node("ranker_model")[0].metadata["use_ranker"].value


def test_models_and_evaluation_from_imported_ratings(
    tmp_path, spark_resource, object_store, redis_resource
) -> None:
    """A MovieLens-format file the test writes (taste clusters over 40 days) -> features, the
    generator choice, ALS, NCF, the ranker, the served-path evaluation with its blocking checks,
    and a release exactly when they pass."""
    import numpy as np

    from netflix_assets.recs import ncf
    from netflix_assets.recs.als import AlsModel
    from netflix_assets.recs.imports import import_ratings

    rng = np.random.default_rng(5)
    lines = []
    for u in range(160):
        own = [t for t in range(80) if t % 4 == u % 4]
        for i, t in enumerate(rng.choice(own, size=10, replace=False)):
            day = int(rng.integers(0, 40))
            lines.append(f"{u}::{t}::{rng.integers(3, 6)}::{1_760_000_000 + 86_400 * day + i}")
    path = tmp_path / "ratings.dat"
    path.write_text("\n".join(lines) + "\n")
    import_ratings(path, object_store, namespace="ml")
    day = "2026-11-10"
    instance = DagsterInstance.ephemeral()
    model_ops = ("candidate_model", "als_model", "ncf_model", "ranker_model", "model_evaluation")
    small = {"iterations": 6, "ranker_rounds": 30, "ncf_epochs": 4}
    result = materialize(
        recs.ASSETS,
        partition_key=day,
        instance=instance,
        resources={"spark": spark_resource, "object_store": object_store, "redis": redis_resource},
        run_config={"ops": {n: {"config": small} for n in [*model_ops, "recommender_release"]}},
        raise_on_error=False,
    )
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    meta = result.asset_materializations_for_node("model_evaluation")[0].metadata
    served = (meta["served_hr@10"].value, meta["served_ndcg@10"].value)
    als = (meta["als_hr@10"].value, meta["als_ndcg@10"].value)
    assert checks["served_beats_popularity"] is True
    assert meta["served_ndcg@10"].value > meta["popularity_ndcg@10"].value
    assert checks["served_beats_tuned_als"] == (served[0] > als[0] and served[1] > als[1])
    for model in ("als", "ease", "rp3b", "blend", "popularity"):
        assert 0 < meta[f"{model}_coverage"].value <= 1 and meta[f"{model}_ild"].value > 0
    # The temporal protocol scores the served path too (without the ranker when it is in).
    later = "served_without_ranker" if ranked_in(result) else "served"
    assert 0 <= meta[f"temporal_full_{later}_ndcg@10"].value <= 1
    assert meta["temporal_full_als_hr@10"].value > 0 and meta["temporal_cutoff"].value
    chosen = result.asset_materializations_for_node("candidate_model")[0].metadata
    assert chosen["generator"].value in ("als", "ease", "rp3b", "blend")
    ranked = result.asset_materializations_for_node("ranker_model")[0].metadata
    assert isinstance(ranked["use_ranker"].value, bool) and ranked["ranker_reason"].value
    model = AlsModel.from_bytes(object_store.get_bytes(f"models/als/{day}/als.npz"))
    assert len(model.users) == 160 and str(model.users[0]).startswith("ml:")
    releases = result.asset_materializations_for_node("recommender_release")
    # The release exists exactly when every blocking check passed.
    blocking = (
        "served_beats_popularity",
        "served_beats_tuned_als",
        "served_near_best_single_model",
    )
    assert bool(releases) == all(checks[c] for c in blocking)
    if releases:
        release = releases[0].metadata
        assert release["generator"].value == chosen["generator"].value
        assert release["use_ranker"].value == ("true" if ranked["use_ranker"].value else "false")
        assert object_store.exists(release["titles_key"].value)
    # NCF is scored after the evaluation, off the release's path, on the same protocol (a
    # refused evaluation stops it with everything downstream).
    assert bool(result.asset_materializations_for_node("ncf_model")) == bool(releases)
    if releases:
        nm = result.asset_materializations_for_node("ncf_model")[0].metadata
        assert 0 < nm["ncf_coverage"].value <= 1 and 0 <= nm["ncf_hr@10"].value <= 1
        earns = nm["ncf_hr@10"].value > served[0] and nm["ncf_ndcg@10"].value > served[1]
        assert nm["earns_a_place"].value == earns
        neural, users, titles = ncf.from_bytes(object_store.get_bytes(f"models/ncf/{day}/ncf.pt"))
        assert len(users) == 160 and len(titles) == 80
        # The reloaded network still knows the planted tastes: user 0 prefers titles t % 4 == 0.
        scores = ncf.scorer(neural)(users.index("ml:0"), np.arange(len(titles)))
        own = np.array([int(t.split(":")[1]) % 4 == 0 for t in titles])
        assert scores[own].mean() > scores[~own].mean()

    # The next date built to lose: MMR at lambda 0 (relevance ignored after the first pick) and
    # impossible tolerances: the served path must beat tuned ALS and be twice the best single
    # model (blocking: no release) and must not drop at all (the regression check warns).
    next_day = "2026-11-11"
    strict = {
        **small,
        "regression_tolerance": -1.0,
        "best_model_tolerance": -1.0,
        "mmr_lambda": 0.0,
    }
    again = materialize(
        [
            recs.training_interactions,
            recs.candidate_model,
            recs.als_model,
            recs.ncf_model,
            recs.ranker_model,
            recs.model_evaluation,
            recs.recommender_release,
        ],
        partition_key=next_day,
        instance=instance,
        resources={"spark": spark_resource, "object_store": object_store},
        run_config={"ops": {n: {"config": strict} for n in [*model_ops, "recommender_release"]}},
        raise_on_error=False,
    )
    by_name = {c.check_name: c for c in again.get_asset_check_evaluations()}
    assert not by_name["served_near_best_single_model"].passed
    assert not by_name["served_beats_tuned_als"].passed
    assert not by_name["no_regression_vs_previous_date"].passed
    assert not again.asset_materializations_for_node("recommender_release")
