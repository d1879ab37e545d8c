"""Bronze: exact Kafka offset ranges appended to Delta, exactly once.

The next offsets to read are derived from the bronze table itself (max offset per partition + 1),
never from a consumer group, and each append carries a Delta transaction id
(txnAppId = "bronze:<topic>", txnVersion = the sum of the range's end offsets, which only grows).
So a re-run reads nothing new, two runs racing on the same range commit once, and a crash between
the write and any bookkeeping loses nothing: the table is the bookkeeping.

Every row also carries the Kafka topic id it was read from. A topic deleted and re-created gets
a new id, so bronze tells it from the topic it read even when the new one already holds as many
offsets (which offsets alone cannot): planning compares the ids, and an append refuses rows of
another topic id than the ones bronze holds for that topic name.
"""

from __future__ import annotations

import json
import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from netflix_assets.clients.kafka import KafkaClient, KafkaSettings
from netflix_assets.offsets import OffsetGap, OffsetsLost, offset_gaps

OffsetRange = dict[int, tuple[int, int]]
"""Kafka partition -> (start offset inclusive, end offset exclusive)."""

RECREATED_FIX = (
    "Move the bronze table aside (a new table starts at the log start) or ingest a new topic "
    "name; continuing would skip the re-created topic's first offsets as already read."
)


def bronze_next_offsets(path: str, topic: str) -> dict[int, int]:
    """Per partition of `topic`, the first offset bronze does not hold yet; {} for a missing
    table. Only that topic's rows count: another topic's offsets in the same table say nothing
    about this one (taking them would skip its events). Read with delta-rs, no JVM, so sensors
    can call it every tick."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if not path.startswith("s3") and not os.path.isdir(os.path.join(path, "_delta_log")):
        return {}
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    try:
        table = (
            DeltaTable(path)
            .to_pyarrow_dataset()
            .to_table(columns=["partition", "offset"], filter=ds.field("topic") == topic)
        )
    except TableNotFoundError:
        return {}
    if table.num_rows == 0:
        return {}
    grouped = table.group_by("partition").aggregate([("offset", "max")])
    parts = grouped.column("partition").to_pylist()
    maxes = pc.add(grouped.column("offset_max"), 1).to_pylist()
    return dict(zip(parts, maxes, strict=True))


def bronze_topic_id(path: str, topic: str) -> str | None:
    """The Kafka topic id of the rows bronze appended last for `topic`; None for a missing table
    or one written before topic ids were kept."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if not path.startswith("s3") and not os.path.isdir(os.path.join(path, "_delta_log")):
        return None
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    try:
        table = DeltaTable(path)
    except TableNotFoundError:
        return None
    if "topic_id" not in {f.name for f in table.schema().fields}:
        return None
    rows = (
        table.to_pyarrow_dataset()
        .to_table(
            columns=["topic_id", "ingested_at"],
            filter=(ds.field("topic") == topic) & ds.field("topic_id").is_valid(),
        )
        .group_by("topic_id")
        .aggregate([("ingested_at", "max")])
    )
    if rows.num_rows == 0:
        return None
    newest = pc.index(rows.column("ingested_at_max"), pc.max(rows.column("ingested_at_max")))
    return rows.column("topic_id")[newest.as_py()].as_py()


def plan_range(
    next_offsets: dict[int, int],
    watermarks: dict[int, tuple[int, int]],
    topic: str = "viewing-events",
    accept_lost: bool = False,
    kept_topic_id: str | None = None,
    topic_id: str | None = None,
) -> OffsetRange:
    """The range to ingest: from what bronze holds (or the log start) to the current end.

    Raises OffsetsLost when Kafka no longer holds the offsets bronze needs next (retention or
    delete-records ran first) or holds fewer than bronze already has (the topic was re-created):
    starting at the log start would skip the lost events without a word. `accept_lost`
    acknowledges a retention loss (the caller records it); a re-created topic is never accepted,
    because its smaller offsets would make Delta take the new events for a range written already
    (the transaction version is the sum of end offsets). With both topic ids (bronze's, from
    `bronze_topic_id`, and the topic's now), a re-created topic is found whatever its offsets."""
    gaps = offset_gaps(next_offsets, watermarks, kept_topic_id, topic_id)
    if gaps and (not accept_lost or any(g.recreated for g in gaps)):
        if any(g.recreated for g in gaps):
            fix = RECREATED_FIX
        else:
            fix = (
                "Check the topic's retention against the bronze schedule; to record the loss and "
                "continue from the log start, materialize bronze_viewing_events with run config "
                "{ops: {bronze_viewing_events: {config: {accept_lost_offsets: true}}}}."
            )
        ids = (kept_topic_id, topic_id) if gaps[0].replaced else None
        raise OffsetsLost(topic, "bronze", gaps, fix, ids)  # type: ignore[arg-type]
    plan = {}
    for partition, (low, high) in watermarks.items():
        start = max(next_offsets.get(partition, low), low)
        if high > start:
            plan[partition] = (start, high)
    return plan


def range_version(plan: OffsetRange) -> int:
    return sum(end for _, end in plan.values())


def read_range(
    spark: SparkSession,
    kafka: str | KafkaSettings,
    topic: str,
    plan: OffsetRange,
    topic_id: str | None = None,
) -> DataFrame:
    """The plan's exact offsets as Kafka rows with the topic's id (asked when not given).
    `kafka` is the cluster's settings, or its bootstrap servers with authentication from the
    environment / local stack."""
    if isinstance(kafka, str):
        kafka = KafkaSettings.from_env(bootstrap_servers=kafka)
    topic_id = topic_id or KafkaClient(kafka).topic_id(topic)
    starting = json.dumps({topic: {str(p): s for p, (s, _) in plan.items()}})
    ending = json.dumps({topic: {str(p): e for p, (_, e) in plan.items()}})
    return (
        spark.read.format("kafka")
        .options(**kafka.spark_options())
        .option("assign", json.dumps({topic: sorted(plan)}))
        .option("startingOffsets", starting)
        .option("endingOffsets", ending)
        .option("failOnDataLoss", "true")
        .load()
        .withColumn("topic_id", F.lit(topic_id))
    )


def to_bronze(raw: DataFrame) -> DataFrame:
    """Kafka rows -> bronze rows: raw payload kept as text, coordinates kept for lineage."""
    return raw.select(
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("value"),
        "topic",
        F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("long").alias("offset"),
        (F.col("topic_id") if "topic_id" in raw.columns else F.lit(None))
        .cast("string")
        .alias("topic_id"),
        F.col("timestamp").alias("kafka_ts"),
        F.to_date("timestamp").alias("kafka_date"),
        F.current_timestamp().alias("ingested_at"),
    )


def append_bronze(df: DataFrame, path: str, topic: str, version: int) -> None:
    """Appends in one commit; refuses rows read from another topic id than bronze's last one
    for this topic (a re-created topic: its offsets would be taken for ones already held).
    `mergeSchema` adds the topic_id column to a table written before it existed."""
    kept = bronze_topic_id(path, topic)
    if kept is not None:
        ids = {r["topic_id"] for r in df.select("topic_id").distinct().collect()} - {None}
        if ids - {kept}:
            gaps = [
                OffsetGap(p, n, None, None, replaced=True)
                for p, n in bronze_next_offsets(path, topic).items()
            ]
            raise OffsetsLost(topic, "bronze", gaps, RECREATED_FIX, (kept, sorted(ids)[0]))
    (
        df.write.format("delta")
        .mode("append")
        .option("mergeSchema", "true")
        .partitionBy("kafka_date")
        .option("txnAppId", f"bronze:{topic}")
        .option("txnVersion", version)
        .save(path)
    )
