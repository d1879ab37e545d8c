"""Silver and gold follow bronze by themselves: the lake's automation conditions, evaluated."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    Definitions,
    evaluate_automation_conditions,
)

from assets import lake
from netflix_assets.resources import default_resources
from sensors.automation import lake_automation_sensor

DOWNSTREAM = {key.to_user_string() for a in lake.ASSETS for key in a.keys} - {
    "bronze_viewing_events"
}


def requested(result) -> dict[str, set[str]]:
    return {
        r.key.to_user_string(): set(r.true_subset.expensively_compute_partition_keys() or [])
        for r in result.results
        if r.true_subset.size
    }


LAKE = Definitions(assets=lake.ASSETS, resources=default_resources())  # no service is touched


def test_new_bronze_data_refreshes_todays_silver_and_gold() -> None:
    today = datetime.now(UTC).date().isoformat()
    with DagsterInstance.ephemeral() as instance:
        first = evaluate_automation_conditions(defs=LAKE, instance=instance)
        # Nothing has landed yet: bronze is missing, so nothing downstream may run.
        assert not DOWNSTREAM & set(requested(first))

        instance.report_runless_asset_event(AssetMaterialization("bronze_viewing_events"))
        second = evaluate_automation_conditions(defs=LAKE, instance=instance, cursor=first.cursor)
        asked = requested(second)
        assert set(asked) >= {"silver_viewing_events", "silver_quarantine"}
        assert asked["silver_viewing_events"] == {today}

        # Once those have run, the next evaluation asks for nothing again.
        for key in asked:
            instance.report_runless_asset_event(AssetMaterialization(key, partition=today))
        third = evaluate_automation_conditions(defs=LAKE, instance=instance, cursor=second.cursor)
        assert not set(requested(third)) & set(asked)


def test_automation_sensor_is_on_by_default_and_covers_the_lake() -> None:
    assert lake_automation_sensor.default_status.value == "RUNNING"
    keys = lake_automation_sensor.asset_selection.resolve(lake.ASSETS)
    assert AssetKey("gold_title_daily") in keys and AssetKey("silver_viewing_events") in keys
