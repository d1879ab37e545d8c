"""The `netflix-assets` command line: the local stack and the platform's entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import click

from netflix_assets import settings
from netflix_assets.settings import REPO_ROOT
from netflix_assets.stack import manager
from netflix_assets.stack.errors import StackError


@click.group()
def main() -> None:
    """netflix-assets: the data side of a video-streaming service, as Dagster assets."""
    _default_dagster_home()


def _default_dagster_home() -> None:
    """Point DAGSTER_HOME at the local instance unless the caller chose one.

    Commands that record runs (`train`, `demo`, `serve` following the instance) then work in a
    fresh shell exactly as the README shows them, without sourcing `scripts/env.sh` first.
    """
    if os.environ.get("DAGSTER_HOME"):
        return
    home = settings.state_dir() / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists():
        instance_yaml.symlink_to(REPO_ROOT / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)


@main.group()
def stack() -> None:
    """Start, stop and inspect the local stack (Kafka, Redis, PostgreSQL on 127.0.0.1)."""


@stack.command("up")
@click.argument("services", nargs=-1)
@click.option(
    "--with",
    "extras",
    multiple=True,
    help="Also start an optional service group (flink, monitoring, kafka-cluster) beside the "
    "stack.",
)
def stack_up(services: tuple[str, ...], extras: tuple[str, ...]) -> None:
    """Start the stack (or the named services); running services are left alone."""
    from netflix_assets.stack.services import all_services

    names = [*services] or ([s.name for s in all_services()] if extras else [])
    try:
        for name, outcome in manager.up([*names, *extras] or None).items():
            click.echo(f"{name:9s} {outcome}")
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@stack.command("down")
@click.argument("services", nargs=-1)
def stack_down(services: tuple[str, ...]) -> None:
    """Stop what this stack started; other processes are never touched."""
    for name, outcome in manager.down(list(services) or None).items():
        click.echo(f"{name:9s} {outcome}")


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print endpoints and health as JSON.")
def stack_status(as_json: bool) -> None:
    """Health of each service; exits 1 when any is down."""
    states = manager.status()
    if as_json:
        payload = {"services": [asdict(s) for s in states], **manager.endpoints()}
        click.echo(json.dumps(payload, indent=2))
    else:
        for s in states:
            health = "healthy" if s.healthy else ("starting" if s.running else "down")
            click.echo(f"{s.name:9s} {health:8s} pid={s.pid or '-':<8} {s.endpoint}")
    sys.exit(0 if all(s.healthy for s in states) else 1)


@stack.command("jars")
def stack_jars() -> None:
    """Resolve the Java dependencies (Kafka broker, Delta, Spark-Kafka) into the cache."""
    from netflix_assets.stack import jars

    for group in ("kafka", "spark"):
        click.echo(f"{group:6s} {len(jars.resolve(group))} jars in {jars.group_dir(group)}")


@main.group()
def db() -> None:
    """The product database's versioned migrations (schema/migrations)."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply the pending migrations, each in one transaction; a no-op when up to date."""
    from netflix_assets.clients.postgres import PostgresSettings
    from netflix_assets.product import migrations

    try:
        applied = migrations.migrate(PostgresSettings().conninfo())
    except migrations.MigrationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"applied {', '.join(applied)}" if applied else "up to date: nothing to apply")


@db.command("status")
def db_status() -> None:
    """Applied and pending versions; exits 1 when one is pending, edited or missing."""
    from netflix_assets.clients.postgres import PostgresSettings
    from netflix_assets.product import migrations

    try:
        states = migrations.status(PostgresSettings().conninfo())
    except migrations.MigrationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for state in states:
        when = state.applied_at.isoformat(timespec="seconds") if state.applied_at else "-"
        click.echo(f"{state.version:04d}  {state.name:32s} {state.state:8s} {when}")
    sys.exit(0 if all(s.state == "applied" for s in states) else 1)


POSITIVE = click.IntRange(min=1)
SHARE = click.FloatRange(0.0, 1.0)
DAY = click.DateTime(formats=["%Y-%m-%d"])


@main.command()
@click.option("--users", type=POSITIVE, default=1000, show_default=True, help="Simulated users.")
@click.option("--titles", type=POSITIVE, default=200, show_default=True, help="Titles.")
@click.option("--days", type=POSITIVE, default=1, show_default=True, help="Days to simulate.")
@click.option("--start", type=DAY, default=None, help="First day; default: the last DAYS days.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Events/s to pace at (default: flat out).",
)
@click.option("--seed", default=7, show_default=True)
@click.option("--malformed-share", type=SHARE, default=0.001, show_default=True)
@click.option("--duplicate-share", type=SHARE, default=0.002, show_default=True)
@click.option("--late-share", type=SHARE, default=0.01, show_default=True)
@click.option("--degrade-cdn", default=None, help="Inject heavy stalls on one CDN (e.g. akamai).")
@click.option(
    "--span-minutes",
    type=POSITIVE,
    default=None,
    help="Start each day's sessions within this many minutes (dense QoE windows for a demo).",
)
@click.option("--max-watch-minutes", type=POSITIVE, default=90, show_default=True)
@click.option("--topic", default=None, help="Topic (default: viewing-events).")
@click.option(
    "--accounts/--no-accounts",
    "with_accounts",
    default=True,
    show_default=True,
    help="Also simulate the account side into PostgreSQL (USERS accounts with profiles, trials, "
    "plan changes, cancellations) and have those profiles watch the catalog's titles (published "
    "ones first, seeded synthetic ones up to TITLES); --no-accounts: invented users u<n>, t<n>.",
)
def simulate(
    users: int,
    titles: int,
    days: int,
    start: datetime | None,
    rate: float | None,
    seed: int,
    malformed_share: float,
    duplicate_share: float,
    late_share: float,
    degrade_cdn: str | None,
    span_minutes: int | None,
    max_watch_minutes: int,
    topic: str | None,
    with_accounts: bool,
) -> None:
    """Produce seeded, reproducible viewing events to Kafka (and the account side to
    PostgreSQL)."""
    from datetime import UTC, timedelta

    from resources.kafka import KafkaResource
    from schema import topics
    from streaming.produce import produce_simulated
    from streaming.simulator import SimConfig

    first = start.date() if start else datetime.now(UTC).date() - timedelta(days=days - 1)
    config = SimConfig(
        users=users,
        titles=titles,
        days=days,
        seed=seed,
        start=first,
        malformed_share=malformed_share,
        duplicate_share=duplicate_share,
        late_share=late_share,
        degrade_cdn=degrade_cdn,
        span_minutes=span_minutes,
        max_watch_minutes=max_watch_minutes,
    )
    if with_accounts:
        config = _simulate_accounts(config)
    try:
        report = produce_simulated(
            KafkaResource(), config, rate=rate, topic=topic or topics.VIEWING_EVENTS
        )
    except RuntimeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"produced {report.produced} events to {report.topic} in {report.seconds:.1f}s "
        f"({report.rate:,.0f}/s); {dict(report.kinds)}"
    )


def _simulate_accounts(config):
    """The account side of `simulate` in PostgreSQL; returns the config with its population."""
    import dataclasses

    from netflix_assets.clients.postgres import PostgresSettings
    from netflix_assets.product import migrations
    from netflix_assets.product.simulation import (
        AccountSimConfig,
        ensure_catalog,
        load_population,
        simulate_accounts,
    )

    postgres = PostgresSettings()
    account_config = AccountSimConfig(
        accounts=config.users, days=config.days, start=config.start, seed=config.seed
    )
    try:
        migrations.migrate(postgres.conninfo())
        with postgres.connect() as conn:
            report = simulate_accounts(conn, account_config)
            added = ensure_catalog(conn, config.titles, config.seed)
            population = load_population(conn, config.titles, config.seed)
    except Exception as exc:  # psycopg's OperationalError, a MigrationError, a RuleViolation
        click.echo(f"error: the account side could not be simulated: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"accounts: {report.accounts} new, {report.subscriptions} subscriptions, "
        f"{report.plan_changes} plan changes, {report.cancellations} cancellations over "
        f"{len(report.days_applied)} days ({len(report.days_skipped)} already simulated); "
        f"{len(population.accounts)} live accounts watch {len(population.titles)} titles "
        f"({added} synthetic added)"
    )
    return dataclasses.replace(config, population=population)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title-id", default=None, help="Partition key (default: derived from the name).")
@click.option("--title", default=None, help="Display title (default: from the file name).")
def upload(file: Path, title_id: str | None, title: str | None) -> None:
    """Store a source video in the raw area and announce it on the uploads topic; the upload
    sensor then adds the title partition and runs the video pipeline."""
    from confluent_kafka import KafkaException

    from netflix_assets.video.upload import upload_title
    from resources.kafka import KafkaResource
    from resources.object_store import ObjectStoreResource
    from schema import topics

    kafka = KafkaResource()
    try:
        kafka.ensure_topics([topics.UPLOADS])
        event = upload_title(file, ObjectStoreResource(), kafka, title_id=title_id, title=title)
    except KafkaException as exc:
        click.echo(
            f"error: upload of {file.name} failed: Kafka at {kafka.bootstrap_servers} did not "
            f"answer ({exc}); is the stack up? (`netflix-assets stack up`)",
            err=True,
        )
        sys.exit(1)
    except (ValueError, OSError, RuntimeError) as exc:
        # A bad --title-id, an unreadable file, an undelivered event: the cause, no traceback.
        click.echo(f"error: upload of {file.name} failed: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"uploaded {file.name} as title {event['title_id']} (version {event['sha256'][:12]}) "
        f"to {event['uri']}; event {event['event_id']} on {topics.UPLOADS}"
    )


@main.command("import-ratings")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--namespace", default=None, help="Prefix ids as NS:<id> (default: keep them).")
def import_ratings(file: Path, namespace: str | None) -> None:
    """Load a MovieLens-format ratings file (u.data, ratings.dat, ratings.csv) into the lake's
    interaction table `imported_interactions`; re-importing a namespace replaces it."""
    from netflix_assets.recs.imports import import_ratings as run_import
    from resources.object_store import ObjectStoreResource

    try:
        summary = run_import(file, ObjectStoreResource(), namespace)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(
        f"imported {summary['rows']} ratings ({summary['users']} users, {summary['titles']} "
        f"titles) as source {summary['source']} into {summary['uri']} "
        f"(version {summary['version']}); {summary['bad_lines']} bad lines quarantined"
    )


@main.command()
@click.option("--date", "day", type=DAY, default=None, help="Partition (default: the latest data).")
def train(day: datetime | None) -> None:
    """Materialize features, ALS, NCF, the ranker, the evaluation and the release through
    Dagster (recorded in the instance), then print the evaluation figures."""
    from dagster import DagsterInstance
    from rich.console import Console

    from netflix_assets import train as training_run
    from spark_jobs.features import NoInteractions

    console = Console()
    partition = day.date().isoformat() if day else None
    try:
        partition, result = training_run.train(DagsterInstance.get(), partition)
    except NoInteractions as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(training_run.evaluation_table(partition, result))
    failed = training_run.failed_checks(result)
    if failed or not result.success:
        console.print(f"[red]failed checks: {failed or '-'}; run success: {result.success}")
        sys.exit(1)
    console.print("all checks passed; recommender_release materialized")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option(
    "--poll-seconds", default=10.0, show_default=True, help="How often to look for a newer release."
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Serve the release this JSON manifest names instead of the instance's latest.",
)
@click.option(
    "--release-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where prepared releases are kept (this server's own; default: under the state folder, "
    "one per host and port).",
)
@click.option(
    "--metrics/--no-metrics",
    default=True,
    show_default=True,
    help="Prometheus instrumentation and /metrics (off: the benchmark's baseline).",
)
@click.option(
    "--experiments/--no-experiments",
    "with_experiments",
    default=True,
    show_default=True,
    help="Assign profiles to the experiments defined in PostgreSQL, log exposures to Kafka.",
)
def serve(
    host: str,
    port: int,
    poll_seconds: float,
    manifest: Path | None,
    release_dir: Path | None,
    metrics: bool,
    with_experiments: bool,
) -> None:
    """Serve recommendations over HTTP from the latest recommender_release (hot-swapped)."""
    import gc
    import os

    # One BLAS/OpenMP thread: a request's matrix work is too small to split, and spare BLAS
    # threads spin on the cores the event loop and Redis need (p99 suffered 10x on 2 cores).
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    # The release poller is the only other Python thread. A release is prepared in a child
    # process, but opening it still runs Python here; each time the event loop waits on a socket
    # the poller may take the GIL for up to the switch interval (5 ms by default, paid several
    # times by one request). At 0.5 ms the loop gets the GIL back quickly; with no swap running
    # there is no contention, so nothing changes.
    sys.setswitchinterval(0.0005)
    import uvicorn

    from netflix_assets import release_source
    from netflix_assets.clients.redis import RedisSettings
    from netflix_assets.serving import bundle
    from netflix_assets.serving.app import create_app
    from netflix_assets.serving.auth import (
        API_KEY_ENV,
        JWT_SECRET_ENV,
        AuthConfig,
        AuthConfigError,
    )
    from netflix_assets.serving.store import ModelStore
    from resources.object_store import ObjectStoreResource

    try:
        auth = AuthConfig.from_env()
    except AuthConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if not auth.enabled:
        click.echo(
            f"error: set {API_KEY_ENV} and/or {JWT_SECRET_ENV}; refusing to serve unauthenticated",
            err=True,
        )
        sys.exit(2)
    if manifest is not None:
        source = bundle.manifest_file_source(manifest)
    else:
        from dagster import DagsterInstance

        source = release_source.instance_source(DagsterInstance.get())
    release_dir = release_dir or settings.state_dir() / "serving" / f"{host}-{port}"
    store = ModelStore(source, ObjectStoreResource(), release_dir, poll_seconds)
    store.refresh()
    if store.current is None:
        click.echo(
            "warning: no release yet; answering 503 until `netflix-assets train` makes one",
            err=True,
        )
    store.start()
    running, exposures = _serving_experiments() if with_experiments else (None, None)
    app = create_app(
        store,
        RedisSettings().async_client,
        auth,
        experiments=running,
        exposures=exposures,
        metrics=metrics,
    )
    # Loading a release allocates enough objects to start a full collection, which walked the
    # ~320k objects of the imports and the first bundle with the GIL held: 158 ms, measured in
    # the middle of a swap under load. Frozen, they are skipped by every later collection
    # (4 ms for the same swap); they are long-lived anyway, and freeing by reference count is
    # unaffected.
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: 18080.")
def web(host: str, port: int | None) -> None:
    """Serve the viewer web app (sign-in, home rows, player, /v1/events); players fetch media
    through the caching edge (`netflix-assets stack up edge`)."""
    import uvicorn

    from netflix_assets.clients import kafka as kafka_client
    from netflix_assets.stack import secrets
    from netflix_assets.web import config as web_config
    from netflix_assets.web.app import create_app
    from netflix_assets.web.events import EventSink
    from schema.topics import VIEWING_EVENTS

    key = web_config.signing_key_from_env()
    key = key or secrets.ensure(web_config.SIGNING_KEY_SECRET).encode()
    try:
        config = web_config.WebConfig(signing_key=key)
    except web_config.WebConfigError as exc:
        raise click.ClickException(str(exc)) from None
    sink = EventSink(kafka_client.client().producer(**{"linger.ms": 5}), VIEWING_EVENTS)
    port = port or web_config.web_port()
    click.echo(f"web app on http://{host}:{port}/ (media through {config.edge_url})")
    uvicorn.run(create_app(config, sink), host=host, port=port, log_level="warning")


@main.command("web-password")
@click.argument("email")
@click.password_option(help="Prompted (twice, hidden) when not given; 8 to 1024 characters.")
def web_password(email: str, password: str) -> None:
    """Set the web sign-in password of the account with this e-mail (argon2id hash)."""
    import psycopg

    from netflix_assets.web import viewers

    with psycopg.connect(settings.postgres_dsn()) as conn:
        row = conn.execute(
            "SELECT account_id FROM product.accounts WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
        if row is None:
            raise click.ClickException(f"no account with the e-mail {email!r}")
        try:
            viewers.set_password(conn, row[0], password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"password set for {row[0]}")


def _serving_experiments():
    """The experiments defined in PostgreSQL (re-read every minute) and the exposure log."""
    from confluent_kafka import KafkaException

    from netflix_assets.clients import kafka as kafka_clients
    from netflix_assets.clients.postgres import PostgresSettings
    from netflix_assets.experiments import registry
    from netflix_assets.experiments.serving import ExposureLog, RunningExperiments
    from schema import topics

    postgres = PostgresSettings()

    def load():
        with postgres.connect() as conn:
            return registry.load(conn)

    running = RunningExperiments(load)
    if not running.refresh():
        click.echo(
            f"warning: experiments not loaded ({running.last_error}); serving without them "
            "until they load",
            err=True,
        )
    running.start()
    kafka = kafka_clients.client()  # the project's Kafka settings (env or the local stack)
    name = topics.EXPERIMENT_EXPOSURES
    try:
        kafka.ensure_topics([name], partitions=topics.PARTITIONS[name])
    except KafkaException as exc:
        click.echo(f"warning: could not check the topic {name} ({exc}); exposures queue", err=True)
    return running, ExposureLog(kafka.producer(), name)


@main.group()
def experiments() -> None:
    """A/B experiments, defined in PostgreSQL (docs/OPERATIONS.md)."""


@experiments.command("define")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def experiments_define(file: Path) -> None:
    """Define the experiments of a YAML file (`experiments: [...]`, as deploy/experiments.yml)
    in PostgreSQL. Checked with those already defined; an unchanged one is left as it is, and
    only the end date and description of a defined one may change."""
    from netflix_assets.clients.postgres import PostgresSettings
    from netflix_assets.experiments import registry
    from netflix_assets.experiments.definitions import (
        LAKE_METRICS,
        ExperimentDefinitionError,
        load_registry,
    )

    try:
        wanted = load_registry(file.read_text(), LAKE_METRICS)
        with PostgresSettings().connect() as conn:
            done = registry.define(conn, wanted.values(), LAKE_METRICS)
    except ExperimentDefinitionError as exc:
        click.echo(f"error: {file}: {exc}", err=True)
        sys.exit(2)
    for verb, ids in (("created", done.created), ("updated", done.updated)):
        for experiment_id in ids:
            click.echo(f"{verb} {experiment_id}")
    click.echo(f"{len(done.unchanged)} unchanged")


@experiments.command("list")
def experiments_list() -> None:
    """Every defined experiment: layer and traffic slice, dates, variants, metrics."""
    from netflix_assets.clients.postgres import PostgresSettings
    from netflix_assets.experiments import registry
    from netflix_assets.experiments.definitions import ExperimentDefinitionError

    try:
        with PostgresSettings().connect() as conn:
            defined = registry.load(conn)
    except ExperimentDefinitionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for e in defined.values():
        variants = ", ".join(
            f"{v.name} {v.share:g}" + "".join(f" {k}={x:g}" for k, x in v.params.items())
            for v in e.variants
        )
        click.echo(
            f"{e.experiment_id}  layer {e.layer} [{e.traffic_start:g}, {e.traffic_end:g})  "
            f"{e.start}..{e.end}  {variants}  primary {e.primary_metric}"
            + (f", guardrails {', '.join(e.guardrail_metrics)}" if e.guardrail_metrics else "")
        )


@main.command()
@click.argument("sql")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table for people; csv (with a header) or json (an array of rows) to pipe on.",
)
def query(sql: str, output_format: str) -> None:
    """Run SQL over the lake's Delta tables with DuckDB (no JVM); tables are named after assets."""
    from rich.console import Console

    from netflix_assets import table_output
    from netflix_assets.lake_query import LakeQueryError
    from netflix_assets.lake_query import query as run_query

    try:
        result = run_query(sql)
    except LakeQueryError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if output_format == "csv":
        click.echo(table_output.to_csv(result), nl=False)
    elif output_format == "json":
        click.echo(table_output.to_json(result))
    else:
        Console().print(table_output.to_rich(result))


def _run_module(python: Path, module: str, args: tuple[str, ...]) -> None:
    """Run a module of this repository in the foreground and exit with its status."""
    if not python.exists():
        click.echo(f"error: {python} is missing; run `make bootstrap`", err=True)
        sys.exit(1)
    sys.exit(subprocess.call([str(python), "-m", module, *args], cwd=REPO_ROOT))


def _prepare_stream_topics(args: tuple[str, ...]) -> None:
    from resources.kafka import KafkaResource
    from streaming.qoe_job import parser

    options, _ = parser().parse_known_args(list(args))
    kafka = KafkaResource(bootstrap_servers=options.bootstrap_servers)
    try:
        existing = set(kafka.admin().list_topics(timeout=kafka.request_timeout_s).topics)
    except Exception as exc:  # confluent-kafka raises KafkaException with the broker's reason
        click.echo(f"error: Kafka at {options.bootstrap_servers} is unreachable: {exc}", err=True)
        sys.exit(1)
    if options.events_topic not in existing:
        click.echo(
            f"error: the events topic {options.events_topic!r} does not exist; produce to it "
            f"first (netflix-assets simulate --topic {options.events_topic})",
            err=True,
        )
        sys.exit(2)
    created = kafka.ensure_topics([options.aggregates_topic, options.alerts_topic])
    if created:
        click.echo(f"created output topics: {', '.join(created)}")


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stream(args: tuple[str, ...]) -> None:
    """Run the PyFlink QoE job on Flink's local mini-cluster (its own env, .venv-flink), or
    with --cluster submit it to the stack's Flink cluster (`stack up --with flink`).

    Every option passes through to streaming.qoe_job (`netflix-assets stream --help`). The
    broker does not create topics on first use, so the job's output topics are created here
    first (a sink writing to a missing topic would otherwise wait without saying why), and a
    missing events topic stops the command with the cause."""
    if not {"-h", "--help", "--print-sql"} & set(args):
        _prepare_stream_topics(args)
    if "--cluster" in args:
        _submit_to_cluster([a for a in args if a != "--cluster"])
        return
    _run_module(REPO_ROOT / ".venv-flink" / "bin" / "python", "streaming.qoe_job", args)


def _submit_to_cluster(args: list[str]) -> None:
    """`stream --cluster`: `flink run -py` to the stack's Flink cluster (`stack up --with
    flink`), detached; the job's checkpoints go to the cluster's folder unless given."""
    from netflix_assets.stack import flink_cluster

    ports = flink_cluster.stack_ports()
    if not flink_cluster.registered_taskmanagers(ports.rest):
        click.echo(
            f"error: no Flink cluster with a TaskManager answers on {settings.HOST}:{ports.rest}; "
            "start it with `netflix-assets stack up --with flink`",
            err=True,
        )
        sys.exit(2)
    state = flink_cluster.stack_state()
    if not any(a.startswith("--checkpoint-dir") for a in args):
        args = [*args, f"--checkpoint-dir={state / 'checkpoints'}"]
    try:
        job_id = flink_cluster.submit(args, state, ports.rest)
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"submitted QoE job {job_id}: http://{settings.HOST}:{ports.rest}/#/job/{job_id}")


@main.command(
    "stream-sink", context_settings={"ignore_unknown_options": True, "help_option_names": []}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stream_sink(args: tuple[str, ...]) -> None:
    """Copy the QoE job's Kafka outputs into Redis for dashboards (latest values per key)."""
    _run_module(Path(sys.executable), "streaming.flink.redis_sink", args)


@main.command()
def demo() -> None:
    """Run the end-to-end demo on embedded defaults (starts the stack when it is down)."""
    from netflix_assets import demo as demo_module

    try:
        demo_module.run()
    except (StackError, demo_module.DemoFailed) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
