"""The end-to-end demo on embedded defaults: each capability adds a step here as it lands.

The terminal shows each step with its duration and the figures it produced. The demo records its
runs in the DAGSTER_HOME instance, so `make ui` shows them and their event logs afterwards; what
the runs print (Dagster's event log at DEBUG, Spark, FFmpeg) goes to a log file under
`.state/demo/`, named at the end. Steps reach assets, jobs and sensors by name through the
Definitions and read results from materialization metadata and the lake tables, as a user would.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from netflix_assets.definitions import defs
from netflix_assets.demo_log import new_log_path, output_to, terminal_console
from netflix_assets.stack import manager


class DemoFailed(Exception):
    """A demo step failed; the message names the step, the cause and the log file."""


def materialize_assets(
    instance: DagsterInstance, names: Sequence[str], partition: str | None = None
) -> ExecuteInProcessResult:
    """Materialize the code location's assets named `names` in one run recorded in `instance`."""
    selection = [AssetKey(name) for name in names]
    unknown = sorted(set(selection) - set(defs.resolve_all_asset_keys()))
    if unknown:
        raise KeyError(
            f"the code location has no asset {', '.join(k.to_user_string() for k in unknown)}; "
            "the asset names are in tests/snapshots/definitions.json"
        )
    job = defs.resolve_implicit_job_def_def_for_assets(selection)
    return job.execute_in_process(
        asset_selection=selection, partition_key=partition, instance=instance
    )


def failed_checks(result: ExecuteInProcessResult) -> list[str]:
    return [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]


def platform_step(console: Console, instance: DagsterInstance) -> None:
    """The catalog schema: proves Dagster, the resources and PostgreSQL work together."""
    result = materialize_assets(instance, ["catalog_schema"])
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
    bronze = materialize_assets(instance, ["bronze_viewing_events"])
    ingested = bronze.asset_materializations_for_node("bronze_viewing_events")[0].metadata
    console.print(f"bronze_viewing_events: {ingested['rows_appended'].value:,} rows appended")
    daily = defs.resolve_job_def("lake_daily_job")  # silver, sessions and gold of one date
    for day in days:
        result = daily.execute_in_process(partition_key=day.isoformat(), instance=instance)
        console.print(
            f"{day}: silver and gold materialized; failed checks: {failed_checks(result) or 'none'}"
        )
    top = query(
        "SELECT title_id, sum(views) AS views, round(sum(watch_hours), 1) AS watch_hours "
        "FROM gold_title_daily GROUP BY title_id ORDER BY views DESC LIMIT 5"
    )
    console.print("top titles (gold_title_daily, as `netflix-assets query` reads it):")
    for row in top.to_pylist():
        console.print(
            f"  {row['title_id']:>12s}  {int(row['views']):6,d} views  "
            f"{float(row['watch_hours']):8,.1f} h"
        )


def product_step(console: Console, instance: DagsterInstance) -> None:
    """Bill the two days, load their viewing history into PostgreSQL, refresh the views,
    snapshot the product tables into the lake and build the revenue and engagement gold tables;
    then MRR by plan from gold (netflix-assets query)."""
    from datetime import UTC, datetime, timedelta

    from netflix_assets.lake_query import query
    from netflix_assets.product.snapshots import SNAPSHOTS

    today = datetime.now(UTC).date()
    days = (today - timedelta(days=1), today)
    materialize_assets(instance, ["viewing_history_partitions"])
    for day in days:
        billed = materialize_assets(instance, ["billing_run", "viewing_history"], day.isoformat())
        meta = billed.asset_materializations_for_node("billing_run")[0].metadata
        rows = billed.asset_materializations_for_node("viewing_history")[0].metadata["rows"]
        console.print(
            f"{day}: {sum(meta['invoices_created'].value.values())} new invoices, "
            f"{meta['succeeded'].value} payments succeeded, {meta['failed'].value} failed; "
            f"{rows.value} sessions into product.viewing_history"
        )
    views = ["revenue_daily_view", "top_titles_by_country_view", "profile_engagement_view"]
    materialize_assets(instance, [*views, *SNAPSHOTS])
    console.print(f"refreshed {len(views)} views; {len(SNAPSHOTS)} product tables into the lake")
    for day in days:
        result = materialize_assets(
            instance, ["gold_revenue_daily", "gold_engagement_by_plan"], day.isoformat()
        )
        console.print(
            f"{day}: revenue and engagement gold; failed checks: {failed_checks(result) or 'none'}"
        )
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
    import tempfile

    from dagster import build_sensor_context

    from netflix_assets.video.testmedia import make_clip
    from netflix_assets.video.upload import upload_title
    from schema import topics

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
    sensor = defs.resolve_sensor_def("title_upload_sensor")
    sensor_resources = {key: resources[key] for key in sensor.required_resource_keys}
    with build_sensor_context(instance=instance, resources=sensor_resources) as context:
        tick = sensor(context)
    wanted = {f"{e['title_id']}:{e['sha256'][:12]}" for e in (good, bad)}
    requests = [r for r in tick.run_requests if r.run_key in wanted]
    for skipped in sorted(wanted - {r.run_key for r in requests}):
        console.print(f"{skipped.split(':')[0]}: this version is already published; no new run")
    instance.add_dynamic_partitions("titles", sorted({good["title_id"], bad["title_id"]}))
    job = defs.resolve_job_def(sensor.job_name)
    for request in requests:
        result = job.execute_in_process(
            run_config=request.run_config,
            partition_key=request.partition_key,
            instance=instance,
            raise_on_error=False,
        )
        console.print(_video_outcome(request.partition_key, result))


def _video_outcome(title_id: str, result: ExecuteInProcessResult) -> str:
    """One line on a title's pipeline run, from its materializations or its failure."""
    if result.success:
        published = result.asset_materializations_for_node("published_title")[0].metadata
        quality = result.asset_materializations_for_node("quality_report")[0].metadata
        return (
            f"{title_id}: published {published['renditions'].value} renditions, top rung "
            f"{quality['top_rung'].value} VMAF {quality['top_rung_vmaf'].value:.1f}; "
            f"play {published['playback_url'].value}"
        )
    failure = result.failure_data_for_node("raw_upload")
    if failure is None:
        failed = ", ".join(result.get_failed_step_keys()) or "the run"
        return f"{title_id}: failed in {failed}; its event log is in the instance (make ui)"
    user = failure.user_failure_data
    reason = user.metadata["reason"].value if user and "reason" in user.metadata else None
    return f"{title_id}: rejected and quarantined: {reason or failure.error.message.strip()}"


def recommendations_step(console: Console, instance: DagsterInstance) -> None:
    """A ratings file with planted tastes imported like MovieLens, `netflix-assets train` on it
    and the lake's sessions (features, ALS, NCF, ranker, evaluation, release, all recorded in
    the instance), then the service answering for a known viewer and for a new one."""
    import tempfile
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from fastapi.testclient import TestClient

    from netflix_assets import release_source
    from netflix_assets import train as training_run
    from netflix_assets.recs import synthetic
    from netflix_assets.recs.imports import import_ratings
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
    failed = training_run.failed_checks(result)
    if failed or not result.success:
        raise RuntimeError(
            f"training for {partition} did not release a model: {_run_failure(result, failed)}"
        )
    console.print(training_run.evaluation_table(partition, result))

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


def web_step(console: Console, instance: DagsterInstance) -> None:
    """The viewer app and its caching edge (`stack up web edge`), and a viewer to sign in as:
    the first simulated account with a live plan and an adult profile gets a fresh password."""
    import secrets

    import psycopg

    from netflix_assets import settings
    from netflix_assets.web import viewers
    from netflix_assets.web.config import web_port

    outcomes = manager.up(["web", "edge"])
    console.print("web: " + ", ".join(f"{name} {outcome}" for name, outcome in outcomes.items()))
    with psycopg.connect(settings.postgres_dsn()) as conn:
        row = conn.execute(
            "SELECT a.account_id, a.email FROM product.accounts a "
            "JOIN product.subscriptions s ON s.account_id = a.account_id AND s.ended_at IS NULL "
            "AND s.status IN ('trialing', 'active', 'past_due') "
            "WHERE EXISTS (SELECT 1 FROM product.profiles p WHERE p.account_id = a.account_id "
            "AND p.maturity_level = 'adult') ORDER BY a.created_at, a.account_id LIMIT 1"
        ).fetchone()
        if row is None:
            raise RuntimeError("no simulated account with a live plan to sign in as")
        password = secrets.token_urlsafe(9)
        viewers.set_password(conn, row[0], password)
    url = f"http://{settings.HOST}:{web_port()}/"
    console.print(f"open {url} and sign in as {row[1]} with the password {password}")


def _run_failure(result: ExecuteInProcessResult, failed_checks: list[str]) -> str:
    """What stopped a run: its failed blocking checks, or its first failed step and the error."""
    if failed_checks:
        return f"failed checks {', '.join(failed_checks)}"
    failures = result.get_step_failure_events()
    if not failures:
        return "the run failed without a failed step; its event log is in the instance (make ui)"
    error = failures[0].step_failure_data.error
    while error is not None and error.cause is not None:  # Dagster wraps the user's error
        error = error.cause
    cause = error.message.strip() if error else failures[0].message
    return f"step {failures[0].step_key} failed: {cause}"


STEPS: list[Callable[[Console, DagsterInstance], None]] = [
    platform_step,
    video_step,
    lake_step,
    product_step,
    recommendations_step,
    web_step,
]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"


def run_steps(
    steps: Sequence[Callable[[Console, DagsterInstance], None]],
    console: Console,
    instance: DagsterInstance,
    log_path: Path,
) -> list[tuple[str, float]]:
    """Run each step with its output sent to `log_path`; (step, seconds) of each. A failing step
    stops the demo with DemoFailed naming the step, the cause and the log (traceback there)."""
    timings = []
    for step in steps:
        name = step.__name__.removesuffix("_step")
        console.rule(name)
        started = time.perf_counter()
        try:
            with output_to(log_path) as log, console.status(f"{name} …"):
                print(f"===== demo step {name}", file=log, flush=True)
                try:
                    step(console, instance)
                except Exception:
                    traceback.print_exc(file=log)
                    raise
        except Exception as exc:
            seconds = time.perf_counter() - started
            cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            console.print(f"[red]✗ {name} failed after {_duration(seconds)}[/red]: {cause}")
            raise DemoFailed(
                f"the {name} step failed: {cause} (traceback and the runs' output in {log_path})"
            ) from exc
        seconds = time.perf_counter() - started
        timings.append((name, seconds))
        console.print(f"[green]✓ {name}[/green] in {_duration(seconds)}")
    return timings


def summary(timings: Sequence[tuple[str, float]], log_path: Path) -> Group:
    """The steps' durations, then where the log and the runs are."""
    table = Table(title="netflix-assets demo")
    table.add_column("step")
    table.add_column("took", justify="right")
    for name, seconds in timings:
        table.add_row(name, _duration(seconds))
    table.add_row("all", _duration(sum(seconds for _, seconds in timings)), style="bold")
    return Group(
        table,
        Text(f"Dagster's event log and everything the runs printed: {log_path}"),
        Text("the runs, their event logs and asset metadata in the UI: make ui"),
    )


def run(log_path: Path | None = None) -> None:
    """The whole demo: the stack, then every step; DemoFailed if a step fails."""
    console = terminal_console()
    log_path = log_path or new_log_path()
    console.rule("netflix-assets demo")
    with output_to(log_path), console.status("starting the stack (what runs is left alone) …"):
        outcomes = manager.up()
    console.print("stack: " + ", ".join(f"{name} {outcome}" for name, outcome in outcomes.items()))
    instance = DagsterInstance.get()
    timings = run_steps(STEPS, console, instance, log_path)
    console.rule("done")
    console.print(summary(timings, log_path))
