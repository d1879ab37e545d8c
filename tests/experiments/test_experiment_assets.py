"""An A/A and an A/B experiment end to end through Kafka, Spark and Delta with the real assets.

Exposure events (with a few bad ones) go to a Kafka topic, gold_user_daily is written with a
planted lift for one variant, and the four assets run for two days. The A/B lift is detected,
the A/A is not significant, bad exposures are quarantined with their reason, and an experiment
whose treatment exposures are half lost fails the blocking sample-ratio check.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from dagster import DagsterInstance, materialize

from assets.experiments import (
    experiment_definitions,
    experiment_exposures,
    experiment_results,
    gold_experiment_daily,
)
from netflix_assets.experiments.assignment import assign
from netflix_assets.experiments.definitions import load_registry
from netflix_assets.experiments.exposures import exposure_event
from resources.object_store import ObjectStoreResource
from schema import tables

pytestmark = [pytest.mark.stack, pytest.mark.slow]
DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
PROFILES = [f"u{i}" for i in range(2000)]
EXPERIMENTS = """
experiments:
  - {experiment_id: ab_mmr, salt: ab-salt, layer: ranking, start: 2026-11-01, end: 2026-11-14,
     variants: [{name: control, share: 0.5}, {name: treatment, share: 0.5}],
     primary_metric: watch_hours, guardrail_metrics: [stalls]}
  - {experiment_id: aa_check, salt: aa-salt, layer: aa, start: 2026-11-01, end: 2026-11-14,
     variants: [{name: a1, share: 0.5}, {name: a2, share: 0.5}], primary_metric: watch_hours}
  - {experiment_id: lossy, salt: lossy-salt, layer: lossy, start: 2026-11-01, end: 2026-11-14,
     variants: [{name: control, share: 0.5}, {name: treatment, share: 0.5}],
     primary_metric: watch_hours}
"""


def _gold_user_daily(spark, store: ObjectStoreResource, registry) -> None:
    """Pre-period (14 days before) and experiment days; ab_mmr's treatment watches 0.3 h more."""
    rng = np.random.default_rng(42)
    level = rng.gamma(2.0, 0.5, len(PROFILES))
    rows = []
    for day in [DAYS[0] - dt.timedelta(days=k) for k in range(1, 15)] + DAYS:
        noise = rng.normal(0, 0.3, len(PROFILES))
        for i, p in enumerate(PROFILES):
            lift = 0.3 if day >= DAYS[0] and assign(registry["ab_mmr"], p) == "treatment" else 0.0
            rows.append((day, p, 1, 1, float(max(level[i] + noise[i] + lift, 0.0)), 1, 0, 0))
    schema = (
        "session_date date, user_id string, sessions long, titles_watched long, "
        "watch_hours double, devices long, stalls long, completions long"
    )
    spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").save(
        store.table_uri(tables.GOLD_USER_DAILY)
    )


def _produce_exposures(kafka, topic: str, registry) -> int:
    producer = kafka.producer()
    bad = 0
    for n, p in enumerate(PROFILES):
        day = DAYS[n % 2]
        at = dt.datetime.combine(day, dt.time(12), dt.UTC)
        ms = int(at.timestamp() * 1000)
        for e in registry.values():
            variant = assign(e, p)
            if e.experiment_id == "lossy" and variant == "treatment" and n % 2 == 0:
                continue  # half of one variant's exposures never logged
            event = exposure_event(e, p, variant, at)
            producer.produce(topic, json.dumps(event).encode(), key=p.encode(), timestamp=ms)
    at = dt.datetime.combine(DAYS[0], dt.time(13), dt.UTC)
    ms = int(at.timestamp() * 1000)
    ghost = {**exposure_event(registry["ab_mmr"], "u1", "control", at), "experiment_id": "ghost"}
    wrong = exposure_event(registry["ab_mmr"], "u1", "control", at)
    wrong["variant"] = "treatment" if assign(registry["ab_mmr"], "u1") == "control" else "control"
    for event in (ghost, wrong, "not json"):
        payload = event.encode() if isinstance(event, str) else json.dumps(event).encode()
        producer.produce(topic, payload, timestamp=ms)
        bad += 1
    assert producer.flush(30) == 0
    return bad


def test_aa_and_ab_experiments_end_to_end(
    kafka_resource, spark_resource, experiments_db, tmp_path: Path
):
    registry = load_registry(EXPERIMENTS)
    store = ObjectStoreResource(root=str(tmp_path / "store"))
    spark = spark_resource.get_session()
    _gold_user_daily(spark, store, registry)
    topic = f"test-exposures-{uuid.uuid4().hex[:8]}"
    kafka_resource.ensure_topics([topic], partitions=2)
    bad = _produce_exposures(kafka_resource, topic, registry)
    (tmp_path / "experiments.yml").write_text(EXPERIMENTS)
    resources = {
        "kafka": kafka_resource,
        "spark": spark_resource,
        "object_store": store,
        "postgres": experiments_db,
    }
    instance = DagsterInstance.ephemeral()
    defined = materialize(
        [experiment_definitions],
        resources=resources,
        instance=instance,
        run_config={
            "ops": {
                "experiment_definitions": {"config": {"path": str(tmp_path / "experiments.yml")}}
            }
        },
    )
    assert defined.success
    chain = [experiment_exposures, gold_experiment_daily, experiment_results]
    for day in DAYS:
        result = materialize(
            chain,
            partition_key=day.isoformat(),
            resources=resources,
            instance=instance,
            run_config={"ops": {"experiment_exposures": {"config": {"topic": topic}}}},
            raise_on_error=False,
        )
    exposures = result.asset_materializations_for_node("experiment_exposures")
    quarantined = spark.read.format("delta").load(
        store.table_uri(tables.EXPERIMENT_EXPOSURES_QUARANTINE)
    )
    reasons = [r["reason"] for r in quarantined.collect()]
    assert len(reasons) == bad
    assert any("unknown experiment 'ghost'" in r for r in reasons)
    assert any("is assigned" in r for r in reasons)
    assert any("not JSON" in r for r in reasons)
    valid = spark.read.format("delta").load(store.table_uri(tables.EXPERIMENT_EXPOSURES)).count()
    assert valid == 2 * len(PROFILES) + len(PROFILES) - sum(
        1
        for n, p in enumerate(PROFILES)
        if n % 2 == 0 and assign(registry["lossy"], p) == "treatment"
    )
    assert exposures
    results = spark.read.format("delta").load(store.table_uri(tables.EXPERIMENT_RESULTS)).toPandas()
    final = results[
        (results["as_of"] == DAYS[1]) & (results["date"] == DAYS[1]) & results["primary"]
    ]
    ab = final[final["experiment_id"] == "ab_mmr"].iloc[0]
    aa = final[final["experiment_id"] == "aa_check"].iloc[0]
    assert ab["n_control"] + ab["n_variant"] == len(PROFILES)
    assert ab["cuped_ci_low"] > 0 and ab["cuped_sequential_p_value"] < 0.05
    assert 0.2 < ab["cuped_diff"] < 0.4 * 2  # cumulative over up to two days of 0.3
    assert aa["sequential_p_value"] > 0.05 and aa["ci_low"] < 0 < aa["ci_high"]
    assert ab["cuped_variance_ratio"] < 0.8  # the pre-period explains much of watch time
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    srm = checks["sample_ratio_matches"]
    assert not srm.passed
    detail = srm.metadata["srm"].value
    assert (
        detail["ab_mmr"]["passed"]
        and detail["aa_check"]["passed"]
        and not detail["lossy"]["passed"]
    )
    meta = result.asset_materializations_for_node("experiment_results")[0].metadata
    assert "data:image/png;base64," in meta["cumulative_effect"].value
    assert "ab_mmr" in meta["readout"].value
