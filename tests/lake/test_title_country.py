"""gold_title_country_daily: the pure function, the asset with its reconciliation check, and the
web app's "top in your country" row reading it (delta-rs), on real Spark and Delta."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from dagster import DagsterInstance, materialize
from deltalake import DeltaTable

from assets.lake import gold_title_country_daily
from netflix_assets.web.rows import TopInCountry
from schema import tables
from spark_jobs import delta_io, steps
from spark_jobs.title_country import title_country_daily

DAY = date.today()  # the web row looks at the last days only
COLUMNS = ["session_id", "session_date", "country", "title_id", "profile_id", "started"]


def sessions(spark, day: date):
    """Eleven sessions of one day: in US, t1 started four times by three profiles (one profile
    twice), t2 twice, t3 attempted but never started; in FR, t3 started once."""
    rows = [
        ("s1", "US", "t1", "p1", True, 600_000),
        ("s2", "US", "t1", "p1", True, 1_200_000),
        ("s3", "US", "t1", "p2", True, 0),
        ("s4", "US", "t1", "p3", True, 3_600_000),
        ("s5", "US", "t1", "p4", False, 0),
        ("s6", "US", "t2", "p1", True, 60_000),
        ("s7", "US", "t2", "p5", True, 60_000),
        ("s8", "US", "t3", "p1", False, 0),
        ("s9", "US", "t3", "p2", False, 0),
        ("s10", "FR", "t3", "p9", True, 1_800_000),
        ("s11", "FR", "t3", "p9", False, 0),
    ]
    return spark.createDataFrame(
        [(s, day, c, t, p, started, ms) for s, c, t, p, started, ms in rows],
        [*COLUMNS, "watched_ms"],
    )


def test_title_country_daily_counts_starts_profiles_and_hours(spark):
    got = {
        (r["country"], r["title_id"]): r.asDict()
        for r in title_country_daily(sessions(spark, DAY)).collect()
    }
    assert set(got) == {("US", "t1"), ("US", "t2"), ("US", "t3"), ("FR", "t3")}
    t1 = got[("US", "t1")]
    assert (t1["sessions"], t1["starts"], t1["profiles"]) == (5, 4, 3)
    assert t1["watch_hours"] == pytest.approx(5_400_000 / 3_600_000)
    assert (got[("US", "t3")]["starts"], got[("US", "t3")]["profiles"]) == (0, 0)
    assert (got[("FR", "t3")]["sessions"], got[("FR", "t3")]["starts"]) == (2, 1)


def test_the_asset_reconciles_with_sessions_and_the_web_row_reads_it(
    spark, spark_resource, object_store
):
    sessions_path = object_store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)
    for day in (DAY, DAY - timedelta(days=1)):
        delta_io.replace_day(sessions(spark, day), sessions_path, "session_date", day)
    result = materialize(
        [gold_title_country_daily],
        partition_key=DAY.isoformat(),
        resources={"spark": spark_resource, "object_store": object_store},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "reconciles_with_sessions" and check.passed, check.metadata
    assert check.metadata["table_starts"].value == check.metadata["sessions_starts"].value == 7
    meta = result.asset_materializations_for_node("gold_title_country_daily")[0].metadata
    assert meta["rows"].value == 4

    gold_uri = object_store.table_uri(tables.GOLD_TITLE_COUNTRY_DAILY)
    written = DeltaTable(gold_uri).to_pyarrow_table().to_pylist()
    assert {r["session_date"] for r in written} == {DAY}  # only the partition's day
    us = TopInCountry(gold_uri)("US")
    assert us.title_ids == ["t1", "t2"] and us.note is None  # t3 never started in US
    assert TopInCountry(gold_uri)("FR").title_ids == ["t3"]
    nobody = TopInCountry(gold_uri)("JP")
    assert nobody.title_ids == [] and "no starts in JP" in nobody.note


def test_a_day_that_does_not_add_up_fails_reconciliation(spark, object_store):
    sessions_path = object_store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)
    delta_io.replace_day(sessions(spark, DAY), sessions_path, "session_date", DAY)
    good = steps.title_country_day(spark, object_store, DAY)
    assert good.reconciles
    lost_start = {**good.table_totals, "starts": good.table_totals["starts"] - 1}
    assert not replace(good, table_totals=lost_start).reconciles
    more_hours = {**good.table_totals, "watch_hours": good.table_totals["watch_hours"] + 0.01}
    assert not replace(good, table_totals=more_hours).reconciles


def test_without_sessions_the_step_names_what_to_run(spark, object_store):
    with pytest.raises(steps.StepInputMissing, match="'sessions' step"):
        steps.title_country_day(spark, object_store, DAY)


def test_the_row_says_when_the_gold_table_is_missing(object_store):
    row = TopInCountry(object_store.table_uri(tables.GOLD_TITLE_COUNTRY_DAILY))("US")
    assert row.title_ids == [] and "gold_title_country_daily" in row.note
