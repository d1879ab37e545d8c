"""`netflix-assets train`: materialize the recommendation assets for the latest data through
Dagster, so the runs, figures and checks are recorded in the instance (the UI shows them and the
serving layer follows recommender_release), then summarize the evaluation."""

from __future__ import annotations

import threading
from datetime import UTC, date

from dagster import DagsterInstance
from threadpoolctl import threadpool_limits

from netflix_assets.partitions import event_date_partitions


def latest_partition(latest_event: date | None) -> str:
    """The partition to train: the date of the newest interaction, moved into the partition
    range (an imported file from 1998 trains on the first partition, where all of it is past)."""
    keys = event_date_partitions.get_partition_keys()
    if latest_event is None:
        return keys[-1]
    day = latest_event.isoformat()
    return min(max(day, keys[0]), keys[-1])


JOB = "recommendations_job"


def newest_interaction(object_store) -> date | None:
    """The UTC date of the newest interaction (spark_jobs.features.load_interactions' rows:
    started sessions with a user, and imported ratings), read without Spark: the `deltalake`
    reader scans the one or three columns it needs, so choosing the partition does not start a
    JVM query before the run (it cost a fresh session's first Delta read, several seconds).
    NoInteractions names what to run when neither table exists."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from schema import tables
    from spark_jobs.features import NO_INTERACTIONS, NoInteractions

    reads = {
        tables.SILVER_PLAYBACK_SESSIONS: (
            "session_start",
            pc.field("started") & pc.field("user_id").is_valid(),
        ),
        tables.IMPORTED_INTERACTIONS: ("ts", None),
    }
    found, newest = False, []
    for table, (column, where) in reads.items():
        uri = object_store.table_uri(table)
        if not DeltaTable.is_deltatable(uri):
            continue
        found = True
        dataset = DeltaTable(uri).to_pyarrow_dataset()
        values = dataset.to_table(columns=[column], filter=where).column(column)
        if (value := pc.max(values).as_py()) is not None:
            newest.append(value if value.tzinfo else value.replace(tzinfo=UTC))
    if not found:
        raise NoInteractions(NO_INTERACTIONS)
    return max(newest).astimezone(UTC).date() if newest else None


LOCAL_DRIVER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"
"""The JIT's first tier only, for a local driver (where all of Spark's work runs): a train run
is a few minutes of small jobs, and the optimizing compiler's threads spent more CPU than they
saved. Features of 100k interactions on a fresh JVM, 2 cores: 30-35 s of CPU against 56-59 s
with both tiers, alternating runs (docs/RECS.md)."""


def driver_options(spark) -> dict[str, str]:
    """extra_conf for the train run's session: LOCAL_DRIVER_JAVA_OPTIONS on a local master whose
    conf sets no driver Java options of its own; the resource's extra_conf otherwise."""
    conf = dict(spark.extra_conf)
    if spark.master.startswith("local") and "spark.driver.extraJavaOptions" not in conf:
        conf["spark.driver.extraJavaOptions"] = LOCAL_DRIVER_JAVA_OPTIONS
    return conf


def train(instance: DagsterInstance, partition: str | None = None, run_config: dict | None = None):
    """(partition, ExecuteInProcessResult) of one run of the recommendations job.

    The default Spark session starts in a thread while the definitions load: its JVM starts in
    a process of its own, so on 2 cores the two overlap instead of adding up. The run's steps
    get that session (one per process, spark_jobs.session.get_session); if the definitions'
    Spark resource is not the default one, the early session is stopped unused. A local
    driver gets LOCAL_DRIVER_JAVA_OPTIONS. The steps run with one OpenBLAS thread: its second
    thread spins while it waits, and the model steps' matrices (1,617 titles at 100k) are too
    small to share; `select` at 100k took 5.5 s of CPU on one thread against 9.3-13.1 s on two
    (alternating runs, load 7-9), and less wall time too."""
    from resources.spark import SparkResource

    default = SparkResource()
    early = SparkResource(extra_conf=driver_options(default))
    starting = threading.Thread(target=early.get_session, name="spark-start", daemon=True)
    starting.start()
    from netflix_assets.definitions import defs

    starting.join()
    if defs.resources["spark"] != default:
        early.get_session().stop()
    if partition is None:
        partition = latest_partition(newest_interaction(defs.resources["object_store"]))
    with threadpool_limits(limits=1, user_api="blas"):
        result = defs.resolve_job_def(JOB).execute_in_process(
            partition_key=partition,
            instance=instance,
            run_config=run_config or {},
            raise_on_error=False,
        )
    return partition, result


EVALUATED = ("served", "blend", "als", "ease", "rp3b", "ncf", "popularity")


def evaluation_rows(result) -> list[tuple[str, str, float, float, float, float]]:
    """(model, protocol, HR@10, NDCG@10, coverage, intra-list diversity) rows from the
    evaluation's metadata: leave-latest-out full ranking for the served pipeline and every
    model, the temporal protocol (fit before a cutoff, scored on each user's new titles after
    it), then the ranker's own hold-out at its cutoff (coverage and diversity not measured
    there)."""
    materialized = result.asset_materializations_for_node("model_evaluation")
    if not materialized:
        return []
    report = materialized[0].metadata["report"].value
    nan = float("nan")
    rows = [
        (model, "latest-out", m["hr@10"], m["ndcg@10"], m["coverage"], m["ild"])
        for model in EVALUATED
        if (m := report.get(model)) is not None
    ]
    for scored in result.asset_materializations_for_node("ncf_model"):  # NCF, off the path
        m = {k: scored.metadata[f"ncf_{k}"].value for k in ("hr@10", "ndcg@10", "coverage", "ild")}
        rows.append(("ncf", "latest-out", m["hr@10"], m["ndcg@10"], m["coverage"], m["ild"]))
    later = report.get("temporal_full") or {}
    for model in ("served", "served_without_ranker", *EVALUATED[1:]):
        if (m := later.get(model)) is not None and model != "ncf":
            rows.append((model, "temporal", m["hr@10"], m["ndcg@10"], m["coverage"], m["ild"]))
    for model in ("ranker", "generator", "popularity"):
        m = (report.get("temporal") or {}).get(model)
        if m is not None:
            rows.append((model, "ranker cut", m["hr@10"], m["ndcg@10"], nan, nan))
    return rows


def evaluation_table(partition: str, result):
    """The evaluation as a rich table, for the CLI and the demo."""
    from rich.table import Table

    view = Table(
        "model", "protocol", "HR@10", "NDCG@10", "coverage", "diversity", title=f"as of {partition}"
    )
    for model, protocol, hr, ndcg, coverage, ild in evaluation_rows(result):
        extra = ("-", "-") if coverage != coverage else (f"{coverage:.3f}", f"{ild:.3f}")
        view.add_row(model, protocol, f"{hr:.3f}", f"{ndcg:.3f}", *extra)
    return view


def failed_checks(result) -> list[str]:
    return [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
