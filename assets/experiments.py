"""Experiments: definitions -> exposures (Kafka) -> gold_experiment_daily -> experiment_results.

`experiment_definitions` validates the experiments file and defines it in PostgreSQL (where the
recommendation service and every asset here read the experiments); `experiment_exposures`
triages a day of exposure events from the topic (quarantining the rest with their reason);
`gold_experiment_daily` joins first exposures with gold_user_daily; `experiment_results` reads
every day so far and writes the cumulative readout, with the sample-ratio check blocking and the
cumulative-effect plot in its metadata. The statistics are `netflix_assets.experiments`.
"""

import datetime as dt
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    Config,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)
from deltalake import DeltaTable
from pydantic import Field
from pyspark.sql import functions as F

from netflix_assets.experiments import registry as experiment_registry
from netflix_assets.experiments.analysis import analyze
from netflix_assets.experiments.definitions import Experiment, load_registry
from netflix_assets.experiments.exposures import EXPOSURES_TOPIC, triage
from netflix_assets.experiments.plots import plot_cumulative_effect
from netflix_assets.partitions import event_date_partitions
from netflix_assets.run_profiles import SPARK_TAGS
from netflix_assets.settings import REPO_ROOT
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.postgres import PostgresResource
from resources.spark import SparkResource
from schema import tables
from spark_jobs import delta_io
from spark_jobs import experiments as gold_experiments

GROUP = "experiments"
DEFAULT_FILE = os.environ.get(
    "NETFLIX_ASSETS_EXPERIMENTS_FILE", str(REPO_ROOT / "deploy" / "experiments.yml")
)


class ExperimentsFileConfig(Config):
    path: str = Field(default=DEFAULT_FILE, description="YAML file with `experiments: [...]`.")


class ExposuresConfig(Config):
    topic: str = Field(default=EXPOSURES_TOPIC, description="Kafka topic of exposure events.")


def _registry(postgres: PostgresResource) -> dict[str, Experiment]:
    with postgres.connect() as conn:
        return experiment_registry.load(conn)


@asset(group_name=GROUP, kinds={"yaml", "postgres"})
def experiment_definitions(
    config: ExperimentsFileConfig, postgres: PostgresResource
) -> MaterializeResult:
    """The experiments file, validated (shares, overlap with what is defined, salts, dates,
    metrics, serving parameters) and defined in PostgreSQL; the table lists every experiment
    defined there."""
    wanted = load_registry(Path(config.path).read_text(), gold_experiments.METRICS)
    with postgres.connect() as conn:
        defined = experiment_registry.define(conn, wanted.values(), gold_experiments.METRICS)
        registry = experiment_registry.load(conn)
    table = (
        "| experiment | variants | dates | primary | guardrails |\n|---|---|---|---|---|\n"
        + "".join(
            f"| {e.experiment_id} | {', '.join(f'{v.name} {v.share:.0%}' for v in e.variants)} | "
            f"{e.start}..{e.end} | {e.primary_metric} | {', '.join(e.guardrail_metrics)} |\n"
            for e in registry.values()
        )
    )
    return MaterializeResult(
        metadata={
            "created": defined.created,
            "updated": defined.updated,
            "unchanged": len(defined.unchanged),
            "experiments": MetadataValue.md(table),
        }
    )


@multi_asset(
    outs={
        "experiment_exposures": AssetOut(group_name=GROUP, kinds={"kafka", "delta"}),
        "experiment_exposures_quarantine": AssetOut(group_name=GROUP, kinds={"delta"}),
    },
    deps=[experiment_definitions],
    partitions_def=event_date_partitions,
    op_tags=SPARK_TAGS,
)
def experiment_exposures(
    context: AssetExecutionContext,
    config: ExposuresConfig,
    kafka: KafkaResource,
    spark: SparkResource,
    object_store: ObjectStoreResource,
    postgres: PostgresResource,
):
    """The day's exposure events (by Kafka timestamp) split into valid and quarantined."""
    day = dt.date.fromisoformat(context.partition_key)
    registry = _registry(postgres)
    values = list(_read_day(kafka, config.topic, day))
    valid, quarantined = triage(values, registry)
    session = spark.get_session()
    rows = [
        (day, e.event_id, e.experiment_id, e.profile_id, e.variant, e.exposed_at, e.exposure_date)
        for e in valid
    ]
    schema = (
        "received_date date, event_id string, experiment_id string, profile_id string, "
        "variant string, exposed_at timestamp, exposure_date date"
    )
    uri = object_store.table_uri(tables.EXPERIMENT_EXPOSURES)
    delta_io.replace_day(session.createDataFrame(rows, schema), uri, "received_date", day)
    q_rows = [(day, q.raw, q.reason) for q in quarantined]
    q_uri = object_store.table_uri(tables.EXPERIMENT_EXPOSURES_QUARANTINE)
    q_df = session.createDataFrame(q_rows, "received_date date, raw string, reason string")
    delta_io.replace_day(q_df, q_uri, "received_date", day)
    reasons: dict[str, int] = {}
    for q in quarantined:
        kind = q.reason.split(" '")[0].split(":")[0]
        reasons[kind] = reasons.get(kind, 0) + 1
    yield Output(None, "experiment_exposures", metadata={"uri": uri, "rows": len(valid)})
    yield Output(
        None,
        "experiment_exposures_quarantine",
        metadata={"uri": q_uri, "rows": len(quarantined), "reasons": MetadataValue.json(reasons)},
    )


def _read_day(kafka: KafkaResource, topic: str, day: dt.date):
    """Values of the messages whose Kafka timestamp falls on `day` (UTC)."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    start_ms = int(start.timestamp() * 1000)
    end_ms = int((start + dt.timedelta(days=1)).timestamp() * 1000)
    # Timestamps are the producers' and need not rise along a partition, so reading starts at
    # the first message at or after the day and keeps only the day's.
    for value, timestamp_ms in kafka.client().read_records_since(topic, start_ms):
        if start_ms <= timestamp_ms < end_ms:
            yield value


@asset(
    group_name=GROUP,
    kinds={"spark", "delta"},
    deps=["experiment_exposures", "gold_user_daily"],
    partitions_def=event_date_partitions,
    op_tags=SPARK_TAGS,
)
def gold_experiment_daily(
    context: AssetExecutionContext,
    spark: SparkResource,
    object_store: ObjectStoreResource,
    postgres: PostgresResource,
) -> MaterializeResult:
    """One row per exposed profile, running experiment and day, with pre-period covariates."""
    day = dt.date.fromisoformat(context.partition_key)
    registry = _registry(postgres)
    session = spark.get_session()
    exposures = (
        session.read.format("delta")
        .load(object_store.table_uri(tables.EXPERIMENT_EXPOSURES))
        .where(F.col("exposure_date") <= F.lit(day))
    )
    user_daily = session.read.format("delta").load(object_store.table_uri(tables.GOLD_USER_DAILY))
    experiments = gold_experiments.experiments_frame(session, registry.values())
    first = gold_experiments.first_exposures(exposures).cache()
    pre = gold_experiments.pre_period(first, user_daily, experiments)
    rows = gold_experiments.experiment_daily(first, user_daily, pre, experiments, day)
    uri = object_store.table_uri(tables.GOLD_EXPERIMENT_DAILY)
    delta_io.replace_day(rows, uri, "date", day)
    written = session.read.format("delta").load(uri).where(F.col("date") == F.lit(day))
    counts = {
        f"{r['experiment_id']}/{r['variant']}": r["count"]
        for r in written.groupBy("experiment_id", "variant").count().collect()
    }
    first.unpersist()
    return MaterializeResult(
        metadata={"uri": uri, "rows": sum(counts.values()), "profiles": MetadataValue.json(counts)}
    )


@asset(
    group_name=GROUP,
    kinds={"pandas", "delta"},
    deps=[gold_experiment_daily],
    partitions_def=event_date_partitions,
    op_tags=SPARK_TAGS,
    check_specs=[AssetCheckSpec("sample_ratio_matches", asset="experiment_results", blocking=True)],
)
def experiment_results(
    context: AssetExecutionContext,
    spark: SparkResource,
    object_store: ObjectStoreResource,
    postgres: PostgresResource,
):
    """Each running experiment's cumulative readout up to the day (every day's row kept)."""
    day = dt.date.fromisoformat(context.partition_key)
    registry = _registry(postgres)
    session = spark.get_session()
    daily = DeltaTable(
        object_store.table_location(tables.GOLD_EXPERIMENT_DAILY)
    ).to_pyarrow_dataset()
    frames, srm, plots, summary = [], {}, [], []
    for experiment in registry.values():
        if not experiment.start <= day:
            continue
        part = _experiment_days(daily, experiment.experiment_id, day)
        if part.empty:
            continue
        readout = analyze(part, experiment)
        srm[experiment.experiment_id] = {
            "p_value": readout.sample_ratio.p_value,
            "counts": readout.sample_ratio.counts,
            "passed": readout.sample_ratio.passed,
        }
        if readout.cumulative.empty:  # fewer than two profiles in a variant so far
            continue
        cumulative = readout.cumulative.assign(as_of=day, experiment_id=experiment.experiment_id)
        frames.append(cumulative)
        summary.extend(_summary_line(experiment, readout.final))
        with tempfile.TemporaryDirectory() as tmp:
            image = plot_cumulative_effect(
                cumulative, experiment.primary_metric, Path(tmp) / "effect.png"
            )
            key = f"experiments/{experiment.experiment_id}/{day.isoformat()}/effect.png"
            object_store.put_file(image, key, content_type="image/png")
            plots.append(f"**{experiment.experiment_id}**\n\n{_data_uri_image(image)}")
    uri = object_store.table_uri(tables.EXPERIMENT_RESULTS)
    if frames:
        table = pd.concat(frames, ignore_index=True)
        table["date"] = pd.to_datetime(table["date"]).dt.date
        delta_io.replace_day(session.createDataFrame(table), uri, "as_of", day)
    yield MaterializeResult(
        metadata={
            "uri": uri,
            "experiments": len(frames),
            "readout": MetadataValue.md(
                "| experiment | metric | variant | diff | 95% CI | always-valid p | CUPED p |\n"
                "|---|---|---|---|---|---|---|\n" + "".join(summary)
            ),
            "cumulative_effect": MetadataValue.md("\n\n".join(plots) or "no experiment data yet"),
        }
    )
    yield AssetCheckResult(
        check_name="sample_ratio_matches",
        passed=all(s["passed"] for s in srm.values()),
        severity=AssetCheckSeverity.ERROR,
        metadata={"srm": MetadataValue.json(srm)},
    )


def _experiment_days(daily: ds.Dataset, experiment_id: str, day: dt.date) -> pd.DataFrame:
    """One experiment's rows up to the day, read by delta-rs straight into Arrow with the filter
    pushed to the Parquet files (the readout is pandas). Collected through Spark instead, the
    7.5M rows of 1M profiles x 14 days ran the 2 GB driver out of Java heap
    (benchmarks/experiments_bench.py --asset)."""
    wanted = (ds.field("experiment_id") == experiment_id) & (ds.field("date") <= day)
    return daily.to_table(filter=wanted).to_pandas()


def _summary_line(experiment: Experiment, final) -> list[str]:
    lines = []
    for _, r in final.iterrows():
        cuped = r.get("cuped_sequential_p_value")
        lines.append(
            f"| {experiment.experiment_id} | {r['metric']} | {r['variant']} | {r['diff']:+.4g} | "
            f"[{r['ci_low']:+.4g}, {r['ci_high']:+.4g}] | {r['sequential_p_value']:.3g} | "
            f"{'' if cuped is None else f'{cuped:.3g}'} |\n"
        )
    return lines


def _data_uri_image(path: Path) -> str:
    import base64

    return f"![effect](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


ASSETS = [experiment_definitions, experiment_exposures, gold_experiment_daily, experiment_results]
