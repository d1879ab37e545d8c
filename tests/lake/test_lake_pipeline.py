"""Kafka -> bronze -> silver -> sessions -> gold through Dagster, on the real broker and Spark."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from dagster import DagsterInstance, materialize
from deltalake import DeltaTable

from assets.lake import (
    bronze_viewing_events,
    gold_tables,
    silver_events,
    silver_playback_sessions,
)
from netflix_assets.lake_query import query
from netflix_assets.stack import manager
from netflix_assets.stack.process import wait_until
from netflix_assets.stack.services import KafkaService
from schema import tables
from streaming.produce import produce_simulated
from streaming.simulator import SimConfig, Simulator

pytestmark = pytest.mark.stack
DAY = date(2026, 11, 1)
CONFIG = SimConfig(users=120, titles=40, start=DAY, malformed_share=0.01, duplicate_share=0.01)


def _bronze(topic, resources):
    return materialize(
        [bronze_viewing_events],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"bronze_viewing_events": {"config": {"topic": topic}}}},
    )


@pytest.fixture(scope="module")
def lake(kafka_resource, spark_resource, tmp_path_factory):
    from resources.object_store import ObjectStoreResource

    topic = f"lake-{os.getpid()}"
    kafka_resource.ensure_topics([topic], partitions=2)
    store = ObjectStoreResource(root=str(tmp_path_factory.mktemp("lake")))
    resources = {"kafka": kafka_resource, "spark": spark_resource, "object_store": store}
    report = produce_simulated(kafka_resource, CONFIG, topic=topic)
    first = _bronze(topic, resources)
    second = _bronze(topic, resources)
    instance = DagsterInstance.ephemeral()
    chain = materialize(
        [bronze_viewing_events, silver_events, silver_playback_sessions, gold_tables],
        selection=[
            "silver_viewing_events",
            "silver_quarantine",
            "silver_playback_sessions",
            "gold_title_daily",
            "gold_qoe_daily",
            "gold_user_daily",
        ],
        partition_key=DAY.isoformat(),
        resources=resources,
        instance=instance,
    )
    return {
        "topic": topic,
        "store": store,
        "report": report,
        "first": first,
        "second": second,
        "chain": chain,
    }


def _meta(result, key):
    return result.asset_materializations_for_node(key)[0].metadata


def test_bronze_holds_exactly_what_was_produced(lake) -> None:
    assert _meta(lake["first"], "bronze_viewing_events")["rows_appended"].value == (
        lake["report"].produced
    )
    table = DeltaTable(lake["store"].table_uri(tables.BRONZE_VIEWING_EVENTS))
    assert table.to_pyarrow_table().num_rows == lake["report"].produced


def test_second_bronze_run_writes_no_new_version(lake) -> None:
    assert _meta(lake["second"], "bronze_viewing_events")["rows_appended"].value == 0
    table = DeltaTable(lake["store"].table_uri(tables.BRONZE_VIEWING_EVENTS))
    assert table.version() == 0


def test_a_second_topic_in_the_same_bronze_keeps_all_its_offsets(
    lake, kafka_resource, spark_resource, tmp_path
) -> None:
    """Bronze of a second topic starts at that topic's own offsets: before the fix the first
    topic's (larger) offsets were taken for it, and its first messages were never ingested."""
    from resources.object_store import ObjectStoreResource

    store = ObjectStoreResource(root=str(tmp_path))
    resources = {"kafka": kafka_resource, "spark": spark_resource, "object_store": store}
    assert _bronze(lake["topic"], resources).success
    other = f"lake-other-{os.getpid()}"
    kafka_resource.ensure_topics([other], partitions=2)
    small = produce_simulated(kafka_resource, SimConfig(users=5, titles=3, seed=3), topic=other)
    assert 0 < small.produced < lake["report"].produced
    ingested = _bronze(other, resources)
    assert _meta(ingested, "bronze_viewing_events")["rows_appended"].value == small.produced
    table = DeltaTable(store.table_uri(tables.BRONZE_VIEWING_EVENTS)).to_pyarrow_table()
    assert table.num_rows == lake["report"].produced + small.produced


def test_silver_has_every_valid_event_of_the_day_once(lake) -> None:
    expected = {
        e["event_id"] for e in Simulator(CONFIG).events() if e["event_ts"].startswith("2026-11-01")
    }
    # Valid events the simulator malformed on purpose are not expected in silver.
    malformed_ids = set()
    for message in Simulator(CONFIG).messages():
        if message.kind not in ("valid", "duplicate"):
            found = re.search(rb'"event_id":"([0-9a-f]+)"', message.value)
            malformed_ids.add(found.group(1).decode())
    silver = DeltaTable(lake["store"].table_uri(tables.SILVER_VIEWING_EVENTS)).to_pyarrow_table(
        columns=["event_id", "event_date"]
    )
    ids = silver.column("event_id").to_pylist()
    assert len(ids) == len(set(ids))
    missing = expected - set(ids) - malformed_ids
    assert not missing, f"{len(missing)} valid events lost"


def test_quarantine_keeps_each_bad_row_with_its_reason(lake) -> None:
    day_start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    sent = Counter(
        m.kind
        for m in Simulator(CONFIG).messages()
        if day_start <= m.timestamp_ms < day_start + 86_400_000  # quarantine is by Kafka date
    )
    table = DeltaTable(lake["store"].table_uri(tables.SILVER_QUARANTINE)).to_pyarrow_table()
    reasons = Counter(table.column("reason").to_pylist())
    assert reasons["malformed_json"] == sent["bad_json"]
    assert reasons["bad_type:position_ms"] == sent["bad_type"]
    assert reasons["missing_field:title_id"] == sent["missing_field"]
    assert reasons["unknown_event_type"] == sent["unknown_event_type"]
    assert reasons["far_future_ts"] == sent["far_future"]


def test_checks_pass_and_gold_answers(lake) -> None:
    chain = lake["chain"]
    assert chain.success
    checks = chain.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks]
    top = query(
        "SELECT title_id, sum(views) AS views FROM gold_title_daily "
        "GROUP BY title_id ORDER BY views DESC LIMIT 3",
        root=lake["store"],
    ).to_pylist()
    assert len(top) == 3 and top[0]["views"] >= top[1]["views"] > 0
    qoe = query("SELECT * FROM gold_qoe_daily", root=lake["store"])
    assert qoe.num_rows > 0


def test_rerunning_a_day_changes_nothing(lake, kafka_resource, spark_resource) -> None:
    resources = {"kafka": kafka_resource, "spark": spark_resource, "object_store": lake["store"]}
    before = DeltaTable(lake["store"].table_uri(tables.SILVER_VIEWING_EVENTS)).to_pyarrow_table()
    again = materialize(
        [bronze_viewing_events, silver_events],
        selection=["silver_viewing_events", "silver_quarantine"],
        partition_key=DAY.isoformat(),
        resources=resources,
        instance=DagsterInstance.ephemeral(),
    )
    assert again.success
    after = DeltaTable(lake["store"].table_uri(tables.SILVER_VIEWING_EVENTS)).to_pyarrow_table()
    assert sorted(after.column("event_id").to_pylist()) == sorted(
        before.column("event_id").to_pylist()
    )


def test_broker_killed_mid_ingestion_loses_and_duplicates_nothing(
    kafka_resource, spark_resource, tmp_path
) -> None:
    from resources.object_store import ObjectStoreResource

    topic = f"lake-kill-{os.getpid()}"
    kafka_resource.ensure_topics([topic], partitions=2)
    store = ObjectStoreResource(root=str(tmp_path))
    resources = {"kafka": kafka_resource, "spark": spark_resource, "object_store": store}
    first = produce_simulated(kafka_resource, SimConfig(users=40, titles=10, seed=1), topic=topic)
    assert _bronze(topic, resources).success

    broker = KafkaService()
    os.kill(broker.pid(), signal.SIGKILL)
    assert wait_until(lambda: not broker.running(), 10)
    manager.up(["kafka"])

    second = produce_simulated(kafka_resource, SimConfig(users=40, titles=10, seed=2), topic=topic)
    assert _bronze(topic, resources).success
    assert _bronze(topic, resources).success  # and once more: nothing new
    table = DeltaTable(store.table_uri(tables.BRONZE_VIEWING_EVENTS)).to_pyarrow_table()
    coordinates = list(
        zip(table.column("partition").to_pylist(), table.column("offset").to_pylist(), strict=True)
    )
    assert len(coordinates) == len(set(coordinates)) == first.produced + second.produced
