"""An A/A and an A/B experiment end to end through the recommendation service and gold.

The experiments are defined in PostgreSQL (a scratch database); the real service (FastAPI app,
Redis, a prepared release) reads them from there, assigns each profile, serves the A/B's
treatment with another MMR lambda, and logs exposures to a Kafka topic through the background
producer. A forged exposure for an unknown experiment lands on the same topic. Then the real
assets read the topic for two days, join gold_user_daily (written here with a planted lift of
0.3 watch-hours a day for the A/B's treatment, since nobody watches in a test) and read the
experiment out: the lift is detected, the A/A is not, the forged event is quarantined.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from fastapi.testclient import TestClient

from assets.experiments import (
    experiment_definitions,
    experiment_exposures,
    experiment_results,
    gold_experiment_daily,
)
from netflix_assets.experiments import registry
from netflix_assets.experiments.assignment import assign
from netflix_assets.experiments.exposures import exposure_event
from netflix_assets.experiments.serving import ExposureLog, RunningExperiments
from netflix_assets.recs import ranker
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.two_stage import TitleTable
from netflix_assets.serving import bundle, prepared
from netflix_assets.serving.app import create_app
from netflix_assets.serving.auth import AuthConfig
from netflix_assets.serving.recommender import recommend
from netflix_assets.serving.store import ModelStore
from schema import tables

pytestmark = [pytest.mark.stack, pytest.mark.slow]
KEY = "experiments-test-key"
N_PROFILES, N_TITLES, DIM = 1200, 300, 8
# Today and yesterday: Kafka's retention judges records by their timestamps, so exposures
# dated weeks back could be deleted by the broker while the test reads them.
DAY2 = dt.datetime.now(dt.UTC).date()
DAY1 = DAY2 - dt.timedelta(days=1)
SUFFIX = uuid.uuid4().hex[:6]
AB, AA = f"mmr_ab_{SUFFIX}", f"aa_{SUFFIX}"
LAMBDA_CONTROL, LAMBDA_TREATMENT = 1.0, 0.3


def served_at(day: dt.date) -> dt.datetime:
    """Noon of `day`, or now if that is earlier: the exposures carry this time as their Kafka
    timestamp, and the broker refuses records more than an hour ahead of its clock
    (`log.message.timestamp.after.max.ms`), so today's noon failed every run before 11:00 UTC."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return min(dt.datetime.combine(day, dt.time(12), dt.UTC), now)


def experiments_yaml() -> str:
    return f"""
experiments:
  - experiment_id: {AB}
    salt: {AB}-salt
    layer: ranking-{SUFFIX}
    variants:
      - {{name: lambda_1_0, share: 0.5, params: {{mmr_lambda: {LAMBDA_CONTROL}}}}}
      - {{name: lambda_0_3, share: 0.5, params: {{mmr_lambda: {LAMBDA_TREATMENT}}}}}
    start: {DAY1}
    end: {DAY1 + dt.timedelta(days=13)}
    primary_metric: watch_hours
    guardrail_metrics: [stalls]
  - experiment_id: {AA}
    salt: {AA}-salt
    layer: aa-{SUFFIX}
    variants: [{{name: a1, share: 0.5}}, {{name: a2, share: 0.5}}]
    start: {DAY1}
    end: {DAY1 + dt.timedelta(days=13)}
    primary_metric: watch_hours
"""


def write_release(store, path: Path, prefix: str) -> None:
    """Clustered tastes (user u and title t share a cluster when u % 6 == t % 6), so relevance
    alone serves one cluster and MMR with a low lambda mixes others in."""
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(6, DIM)).astype(np.float32)
    users = centers[np.arange(N_PROFILES) % 6] + 0.3 * rng.normal(size=(N_PROFILES, DIM))
    titles = centers[np.arange(N_TITLES) % 6] + 0.3 * rng.normal(size=(N_TITLES, DIM))
    model = AlsModel(
        np.array([f"p{i}" for i in range(N_PROFILES)]),
        np.array([f"t{i}" for i in range(N_TITLES)]),
        users.astype(np.float32),
        titles.astype(np.float32),
    )
    feats = pd.DataFrame({"title_id": model.titles})
    for column in ranker.TITLE_FEATURES:
        feats[column] = rng.random(N_TITLES)
    rows = pd.DataFrame(rng.random((400, len(ranker.FEATURES))), columns=list(ranker.FEATURES))
    rows["label"] = (rows["als_score"] > 0.7).astype(int)
    rows["group"] = np.repeat(np.arange(40), 10)
    store.put_bytes(model.to_bytes(), "exp/als.npz")
    store.put_bytes(ranker.train(rows, rounds=5, seed=1).model_to_string().encode(), "exp/r.txt")
    store.put_bytes(TitleTable.build(model.titles, feats).to_bytes(), "exp/titles.npz")
    manifest = {
        "version": "exp-v1",
        "as_of": DAY1.isoformat(),
        "als_key": "exp/als.npz",
        "ranker_key": "exp/r.txt",
        "titles_key": "exp/titles.npz",
        "online_prefix": prefix,
        "generator": "als",
        "use_ranker": "false",
        "mmr_lambda": "0.8",
    }
    path.write_text(json.dumps(manifest))


def write_gold_user_daily(spark, store, ab) -> None:
    """14 pre-period days and the two experiment days; the A/B's treatment watches 0.3 h more."""
    rng = np.random.default_rng(42)
    profiles = [f"p{i}" for i in range(N_PROFILES)]
    level = rng.gamma(2.0, 0.5, N_PROFILES)
    treated = np.array([assign(ab, p) == "lambda_0_3" for p in profiles])
    rows = []
    for day in [DAY1 - dt.timedelta(days=k) for k in range(1, 15)] + [DAY1, DAY2]:
        hours = level + rng.normal(0, 0.3, N_PROFILES) + (0.3 * treated if day >= DAY1 else 0)
        rows += [
            (day, p, 1, 1, float(max(h, 0.0)), 1, 0, 0)
            for p, h in zip(profiles, hours, strict=True)
        ]
    schema = (
        "session_date date, user_id string, sessions long, titles_watched long, "
        "watch_hours double, devices long, stalls long, completions long"
    )
    spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").save(
        store.table_uri(tables.GOLD_USER_DAILY)
    )


def test_aa_and_ab_through_the_service_and_gold(
    experiments_db, kafka_resource, redis_resource, spark_resource, object_store, tmp_path
):
    # Defined through the config asset: the YAML into PostgreSQL.
    (tmp_path / "experiments.yml").write_text(experiments_yaml())
    resources = {
        "kafka": kafka_resource,
        "spark": spark_resource,
        "object_store": object_store,
        "postgres": experiments_db,
    }
    instance = DagsterInstance.ephemeral()
    path = str(tmp_path / "experiments.yml")
    config = {"ops": {"experiment_definitions": {"config": {"path": path}}}}
    assert materialize(
        [experiment_definitions], resources=resources, instance=instance, run_config=config
    ).success
    with experiments_db.connect() as conn:
        defined = registry.load(conn)
    ab, aa = defined[AB], defined[AA]

    # The service, reading the experiments from PostgreSQL.
    prefix = f"exptest:{SUFFIX}"
    manifest = tmp_path / "release.json"
    write_release(object_store, manifest, prefix)
    store = ModelStore(
        bundle.manifest_file_source(manifest),
        object_store,
        tmp_path / "releases",
        prepare=prepared.prepare,
    )
    assert store.refresh()

    def load():
        with experiments_db.connect() as conn:
            return registry.load(conn)

    running = RunningExperiments(load)
    assert running.refresh()
    topic = f"test-exposures-{SUFFIX}"
    kafka_resource.ensure_topics([topic], partitions=2)
    exposures = ExposureLog(kafka_resource.producer(), topic)
    now = {"at": dt.datetime.combine(DAY1, dt.time(12), dt.UTC)}
    app = create_app(
        store,
        redis_resource.async_client,
        AuthConfig(api_key=KEY),
        experiments=running,
        exposures=exposures,
        clock=lambda: now["at"],
    )
    http = TestClient(app)
    served: dict[str, dict] = {}
    for day in (DAY1, DAY2):
        now["at"] = served_at(day)
        # Half the profiles come on each day; a tenth of day 1's come back on day 2.
        first = 0 if day == DAY1 else 1
        again = range(0, N_PROFILES, 20) if day == DAY2 else []
        for n in [*range(first, N_PROFILES, 2), *again]:
            r = http.get(f"/v1/recommendations/p{n}?k=10", headers={"X-API-Key": KEY})
            assert r.status_code == 200, r.text
            served.setdefault(f"p{n}", r.json())
    assert exposures.flush(30) == 0 and exposures.lost == 0
    assert exposures.queued == 2 * (N_PROFILES + N_PROFILES // 20)
    # A client that forged an exposure of an experiment nobody defined.
    at = dt.datetime.combine(DAY1, dt.time(13), dt.UTC)
    ghost = {**exposure_event(ab, "p1", "lambda_1_0", at), "experiment_id": "ghost"}
    producer = kafka_resource.producer()
    producer.produce(topic, json.dumps(ghost).encode(), timestamp=int(at.timestamp() * 1000))
    assert producer.flush(30) == 0

    # One variant per experiment per profile, and the variant changes what is served.
    current = store.current
    differ = 0
    for profile, body in served.items():
        variant = assign(ab, profile)
        assert body["experiments"] == {AB: variant, AA: assign(aa, profile)}
        lam = LAMBDA_TREATMENT if variant == "lambda_0_3" else LAMBDA_CONTROL
        other = LAMBDA_CONTROL if variant == "lambda_0_3" else LAMBDA_TREATMENT
        expected = recommend(_with_lambda(current, lam), profile, {}, [], 10)
        assert [i["title_id"] for i in body["items"]] == [i.title_id for i in expected.items]
        alternative = recommend(_with_lambda(current, other), profile, {}, [], 10)
        differ += [i.title_id for i in expected.items] != [i.title_id for i in alternative.items]
    assert differ > 0.9 * len(served)
    counted = f'recs_experiment_exposures_total{{experiment_id="{AB}",variant="lambda_0_3"}}'
    assert counted in http.get("/metrics").text

    # Gold and the readout, day by day, through the real assets.
    spark = spark_resource.get_session()
    write_gold_user_daily(spark, object_store, ab)
    for day in (DAY1, DAY2):
        result = materialize(
            [experiment_exposures, gold_experiment_daily, experiment_results],
            partition_key=day.isoformat(),
            resources=resources,
            instance=instance,
            run_config={"ops": {"experiment_exposures": {"config": {"topic": topic}}}},
        )
        assert result.success
    reasons = [
        r["reason"]
        for r in spark.read.format("delta")
        .load(object_store.table_uri(tables.EXPERIMENT_EXPOSURES_QUARANTINE))
        .collect()
    ]
    assert reasons == ["unknown experiment 'ghost'"]
    readout = (
        spark.read.format("delta")
        .load(object_store.table_uri(tables.EXPERIMENT_RESULTS))
        .toPandas()
    )
    final = readout[(readout["as_of"] == DAY2) & (readout["date"] == DAY2) & readout["primary"]]
    ab_row = final[final["experiment_id"] == AB].iloc[0]
    aa_row = final[final["experiment_id"] == AA].iloc[0]
    assert ab_row["n_control"] + ab_row["n_variant"] == N_PROFILES
    assert ab_row["cuped_ci_low"] > 0 and ab_row["cuped_sequential_p_value"] < 0.05
    assert aa_row["sequential_p_value"] > 0.05 and aa_row["ci_low"] < 0 < aa_row["ci_high"]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["sample_ratio_matches"].passed
    exposures.close()
    store.stop()


def _with_lambda(current, mmr_lambda: float):
    return dataclasses.replace(
        current, pipeline=dataclasses.replace(current.pipeline, mmr_lambda=mmr_lambda)
    )
