"""The end-to-end demo on embedded defaults: each capability adds a step here as it lands.

The demo records its runs in the DAGSTER_HOME instance, so `make ui` shows them afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from dagster import DagsterInstance, materialize
from rich.console import Console

from netflix_assets.definitions import defs
from netflix_assets.stack import manager


def platform_step(console: Console, instance: DagsterInstance) -> None:
    """The catalog schema: proves Dagster, the resources and PostgreSQL work together."""
    from assets.catalog import catalog_schema

    result = materialize(
        [catalog_schema], resources=defs.resources, instance=instance, raise_on_error=True
    )
    meta = result.asset_materializations_for_node("catalog_schema")[0].metadata
    console.print(f"catalog_schema: {meta['table_count'].value} tables in PostgreSQL")


DEMO_SEED = 11


def _accounts(console: Console, first: date):
    """Two days of the account side in PostgreSQL; returns who watches what."""
    from netflix_assets.product.simulation import (
        AccountSimConfig,
        ensure_catalog,
        load_population,
        simulate_accounts,
    )

    postgres = defs.resources["postgres"]
    with postgres.connect() as conn:
        report = simulate_accounts(
            conn, AccountSimConfig(accounts=400, days=2, start=first, seed=DEMO_SEED)
        )
        ensure_catalog(conn, titles=80, seed=DEMO_SEED)
        population = load_population(conn, titles=80, seed=DEMO_SEED)
    console.print(
        f"accounts: {report.accounts} created ({report.subscriptions} subscriptions, "
        f"{report.plan_changes} plan changes, {report.cancellations} cancellations); "
        f"{len(population.accounts)} live accounts watch {len(population.titles)} titles, "
        f"first {population.titles[0].title_id}"
    )
    return population


def lake_step(console: Console, instance: DagsterInstance) -> None:
    """Two days of simulated viewing through Kafka, bronze, silver, sessions and gold."""
    from datetime import UTC, datetime, timedelta

    from assets.lake import ASSETS as LAKE_ASSETS
    from netflix_assets.lake_query import query
    from resources.kafka import KafkaResource
    from streaming.produce import produce_simulated
    from streaming.simulator import SimConfig

    today = datetime.now(UTC).date()
    days = [today - timedelta(days=1), today]
    population = _accounts(console, days[0])
    report = produce_simulated(
        KafkaResource(),
        SimConfig(days=2, start=days[0], seed=DEMO_SEED, population=population),
    )
    console.print(f"simulated {report.produced:,} events at {report.rate:,.0f}/s")
    everything = [*LAKE_ASSETS]
    materialize(
        everything,
        selection=["bronze_viewing_events"],
        resources=defs.resources,
        instance=instance,
        raise_on_error=True,
    )
    downstream = [
        "silver_viewing_events",
        "silver_quarantine",
        "silver_playback_sessions",
        "gold_title_daily",
        "gold_qoe_daily",
        "gold_user_daily",
    ]
    for day in days:
        result = materialize(
            everything,
            selection=downstream,
            partition_key=day.isoformat(),
            resources=defs.resources,
            instance=instance,
            raise_on_error=True,
        )
        failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
        console.print(f"{day}: lake materialized; failed checks: {failed or 'none'}")
    top = query(
        "SELECT title_id, sum(views) AS views, round(sum(watch_hours), 1) AS watch_hours "
        "FROM gold_title_daily GROUP BY title_id ORDER BY views DESC LIMIT 5"
    )
    console.print("top titles (netflix-assets query):", top.to_pylist())


def product_step(console: Console, instance: DagsterInstance) -> None:
    """Bill the two days, load their viewing history into PostgreSQL, refresh the views,
    snapshot the product tables into the lake and build the revenue and engagement gold tables;
    then MRR by plan from gold (netflix-assets query)."""
    from datetime import UTC, datetime, timedelta

    from assets.product import ASSETS as PRODUCT_ASSETS
    from assets.product import SNAPSHOTS
    from netflix_assets.lake_query import query

    today = datetime.now(UTC).date()
    everything = [*PRODUCT_ASSETS]
    materialize(
        everything,
        selection=["viewing_history_partitions"],
        resources=defs.resources,
        instance=instance,
    )
    for day in (today - timedelta(days=1), today):
        billed = materialize(
            everything,
            selection=["billing_run", "viewing_history"],
            partition_key=day.isoformat(),
            resources=defs.resources,
            instance=instance,
            raise_on_error=True,
        )
        meta = billed.asset_materializations_for_node("billing_run")[0].metadata
        rows = billed.asset_materializations_for_node("viewing_history")[0].metadata["rows"]
        console.print(
            f"{day}: {sum(meta['invoices_created'].value.values())} new invoices, "
            f"{meta['succeeded'].value} payments succeeded, {meta['failed'].value} failed; "
            f"{rows.value} sessions into product.viewing_history"
        )
    materialize(
        everything,
        selection=[
            "revenue_daily_view",
            "top_titles_by_country_view",
            "profile_engagement_view",
            *SNAPSHOTS,
        ],
        resources=defs.resources,
        instance=instance,
        raise_on_error=True,
    )
    for day in (today - timedelta(days=1), today):
        result = materialize(
            everything,
            selection=["gold_revenue_daily", "gold_engagement_by_plan"],
            partition_key=day.isoformat(),
            resources=defs.resources,
            instance=instance,
            raise_on_error=True,
        )
        failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
        console.print(f"{day}: revenue and engagement gold; failed checks: {failed or 'none'}")
    mrr = query(
        "SELECT plan_id, currency, CAST(sum(active_subscriptions) AS BIGINT) AS subscriptions, "
        "round(sum(mrr_cents) / 100.0, 2) AS mrr FROM gold_revenue_daily "
        f"WHERE revenue_date = DATE '{today.isoformat()}' GROUP BY 1, 2 "
        "ORDER BY currency, plan_id"
    )
    console.print("MRR by plan today (gold_revenue_daily, in each currency's units):")
    for row in mrr.to_pylist():
        console.print(
            f"  {row['currency']} {row['plan_id']:9s} {row['subscriptions']:4d} subscriptions  "
            f"MRR {row['mrr']:>12,.2f}"
        )


def video_step(console: Console, instance: DagsterInstance) -> None:
    """A synthetic 720p title uploaded through Kafka, picked up by the upload sensor and taken to
    a published HLS/DASH title; then a broken upload, which ends in quarantine."""
    import json
    import tempfile
    from pathlib import Path

    from dagster import build_sensor_context

    from assets.video import video_pipeline_job
    from netflix_assets.video.testmedia import make_clip
    from netflix_assets.video.upload import upload_title
    from schema import topics
    from sensors.uploads import title_upload_sensor

    resources = defs.resources
    kafka, store = resources["kafka"], resources["object_store"]
    kafka.ensure_topics([topics.UPLOADS])
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "demo-title.mp4", "720p")
        broken = Path(tmp) / "broken-trailer.mp4"
        broken.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
        good = upload_title(clip, store, kafka, title_id="demo-title", title="Demo Title")
        bad = upload_title(broken, store, kafka, title_id="demo-broken", title="Broken Trailer")
    console.print(f"uploaded {good['title_id']} and {bad['title_id']} to {topics.UPLOADS}")
    # One tick of the real sensor over the topic (from its start here; the daemon keeps a cursor).
    sensor_resources = {"kafka": kafka, "object_store": store, "postgres": resources["postgres"]}
    with build_sensor_context(instance=instance, resources=sensor_resources) as context:
        tick = title_upload_sensor(context)
    wanted = {f"{e['title_id']}:{e['sha256'][:12]}" for e in (good, bad)}
    requests = [r for r in tick.run_requests if r.run_key in wanted]
    for skipped in sorted(wanted - {r.run_key for r in requests}):
        console.print(f"{skipped.split(':')[0]}: this version is already published; no new run")
    instance.add_dynamic_partitions("titles", sorted({good["title_id"], bad["title_id"]}))
    job = defs.resolve_job_def(video_pipeline_job.name)
    for request in requests:
        result = job.execute_in_process(
            run_config=request.run_config,
            partition_key=request.partition_key,
            instance=instance,
            raise_on_error=False,
        )
        title_id = request.partition_key
        if result.success:
            record = json.loads(store.get_bytes(f"records/published_title/{title_id}.json"))
            report = json.loads(store.get_bytes(f"records/quality_report/{title_id}.json"))
            top = max(report["rows"], key=lambda r: r["bitrate_kbps"])
            console.print(
                f"{title_id}: published {record['renditions']} renditions, top rung "
                f"{top['rung']} VMAF {top['vmaf_mean']:.1f}; play {record['playback_url']}"
            )
        else:
            reasons = [
                k for k in store.list_keys(f"quarantine/{title_id}") if k.endswith("reason.json")
            ]
            reason = json.loads(store.get_bytes(reasons[-1]))["reason"] if reasons else "?"
            console.print(f"{title_id}: rejected and quarantined: {reason}")


def recommendations_step(console: Console, instance: DagsterInstance) -> None:
    """A ratings file with planted tastes imported like MovieLens, `netflix-assets train` on it
    and the lake's sessions (features, ALS, NCF, ranker, evaluation, release, all recorded in
    the instance), then the service answering for a known viewer and for a new one."""
    import tempfile
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from fastapi.testclient import TestClient

    from netflix_assets import train as training_run
    from netflix_assets.recs import synthetic
    from netflix_assets.recs.imports import import_ratings
    from netflix_assets import release_source
    from netflix_assets.serving import prepared
    from netflix_assets.serving.app import create_app
    from netflix_assets.serving.auth import AuthConfig
    from netflix_assets.serving.store import ModelStore
    from resources.object_store import ObjectStoreResource
    from resources.redis import RedisResource

    objects = ObjectStoreResource()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic.write_dat(synthetic.ratings(end=yesterday), Path(tmp) / "ratings.dat")
        summary = import_ratings(path, objects, namespace="demo")
    console.print(
        f"imported {summary['rows']:,} ratings ({summary['users']} users, "
        f"{summary['titles']} titles) as namespace demo"
    )
    partition, result = training_run.train(instance)
    console.print(training_run.evaluation_table(partition, result))
    failed = training_run.failed_checks(result)
    if failed or not result.success:
        raise RuntimeError(f"training did not release a model: failed checks {failed}")

    # No requests are in flight here, so the release is prepared in this process.
    with tempfile.TemporaryDirectory() as releases:
        store = ModelStore(
            release_source.instance_source(instance),
            objects,
            Path(releases),
            prepare=prepared.prepare,
        )
        if not store.refresh():
            raise RuntimeError(f"the service could not load the release: {store.last_error}")
        key = "demo-key"
        http = TestClient(create_app(store, RedisResource().async_client, AuthConfig(api_key=key)))
        for user in ("demo:1", "someone-new"):
            response = http.get(f"/v1/recommendations/{user}?k=5", headers={"X-API-Key": key})
            response.raise_for_status()
            body = response.json()
            kind = "cold start" if body["cold_start"] else "personal"
            console.print(
                f"GET /v1/recommendations/{user}?k=5 -> {kind}, model {body['model_version']}"
            )
            for item in body["items"]:
                reason = item["reason"]
                why = reason["kind"] + (f" {reason['title_id']}" if "title_id" in reason else "")
                console.print(f"  {item['title_id']:>12s}  score {item['score']:8.4f}  ({why})")


STEPS: list[Callable[[Console, DagsterInstance], None]] = [
    platform_step,
    video_step,
    lake_step,
    product_step,
    recommendations_step,
]


def run() -> None:
    console = Console()
    console.rule("netflix-assets demo")
    for name, outcome in manager.up().items():
        console.print(f"stack {name}: {outcome}")
    instance = DagsterInstance.get()
    for step in STEPS:
        console.rule(step.__name__.removesuffix("_step"))
        step(console, instance)
    console.rule("done")
