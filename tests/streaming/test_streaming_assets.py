"""The stream's external assets and their observation sensor (main venv, no pyflink)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest
from dagster import Definitions, build_sensor_context

from assets import streaming
from resources.kafka import KafkaResource
from resources.redis import RedisResource
from sensors import qoe_stream


def test_assets_and_sensor_compose() -> None:
    defs = Definitions(
        assets=streaming.ASSETS,
        sensors=qoe_stream.SENSORS,
        resources={"kafka": KafkaResource(), "redis": RedisResource()},
    )
    graph = defs.resolve_asset_graph()
    for key in streaming.STREAM_ASSET_KEYS:
        assert graph.get(key).parent_keys == {streaming.viewing_events.key}
        assert graph.get(key).group_name == "streaming"
    # the sensor addresses the outputs by key (it does not import assets/): the same keys
    assert set(qoe_stream.OBSERVED) == set(streaming.STREAM_ASSET_KEYS)
    assert "pyflink" not in sys.modules


def test_stream_observations_metadata() -> None:
    state = qoe_stream.StreamState(
        job_lag=12,
        sink_lag={"qoe-aggregates": 3, "qoe-alerts": 0},
        last_window_end={"viewers": "2026-11-24T20:01:00.000Z", "qoe": "", "alert": ""},
        alerts_last_day=0,
        read_at=datetime(2026, 11, 24, 20, 1, 30, tzinfo=UTC),
    )
    by_key = {o.asset_key.path[0]: o.metadata for o in qoe_stream.stream_observations(state)}
    assert by_key["concurrent_viewers"]["job_consumer_lag"].value == 12
    assert by_key["concurrent_viewers"]["redis_sink_consumer_lag"].value == 3
    assert by_key["concurrent_viewers"]["last_window_age_s"].value == 30.0
    assert by_key["qoe_aggregates"]["last_window_end"].value == "none yet"
    assert by_key["qoe_alerts"]["alerts_last_24h"].value == 0


@pytest.mark.stack
def test_sensor_observes_the_real_stack(
    kafka_resource: KafkaResource, redis_resource: RedisResource
) -> None:
    kafka_resource.ensure_topics(["viewing-events", "qoe-aggregates", "qoe-alerts"])
    context = build_sensor_context(resources={"kafka": kafka_resource, "redis": redis_resource})
    result = qoe_stream.qoe_stream_observation_sensor(context)
    observed = {e.asset_key for e in result.asset_events}
    assert observed == set(streaming.STREAM_ASSET_KEYS)
    for event in result.asset_events:
        assert event.metadata["job_consumer_lag"].value >= 0


def test_reconciliation_without_bronze_names_the_fix(spark_resource, tmp_path) -> None:
    """Bronze is looked for before the broker is read, so no stack is needed here."""
    from dagster import DagsterInstance

    from assets import streaming
    from resources.object_store import ObjectStoreResource

    defs = Definitions(
        assets=streaming.ASSETS,
        asset_checks=streaming.CHECKS,
        jobs=streaming.JOBS,
        resources={
            "kafka": KafkaResource(bootstrap_servers="127.0.0.1:9"),
            "spark": spark_resource,
            "object_store": ObjectStoreResource(root=str(tmp_path)),
        },
    )
    result = defs.resolve_job_def("stream_reconciliation_job").execute_in_process(
        run_config={"ops": {"stream_matches_lake": {"config": {"date": "2026-11-24"}}}},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("stream_matches_lake")
    assert "materialize bronze_viewing_events first" in failure.error.message
