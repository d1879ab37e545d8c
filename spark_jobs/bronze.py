"""Bronze: exact Kafka offset ranges appended to Delta, exactly once.

The next offsets to read are derived from the bronze table itself (max offset per partition + 1),
never from a consumer group, and each append carries a Delta transaction id
(txnAppId = "bronze:<topic>", txnVersion = the sum of the range's end offsets, which only grows).
So a re-run reads nothing new, two runs racing on the same range commit once, and a crash between
the write and any bookkeeping loses nothing: the table is the bookkeeping.
"""

from __future__ import annotations

import json
import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from netflix_assets.clients.kafka import KafkaSettings
from netflix_assets.offsets import OffsetsLost, offset_gaps

OffsetRange = dict[int, tuple[int, int]]
"""Kafka partition -> (start offset inclusive, end offset exclusive)."""


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


def plan_range(
    next_offsets: dict[int, int],
    watermarks: dict[int, tuple[int, int]],
    topic: str = "viewing-events",
    accept_lost: bool = False,
) -> OffsetRange:
    """The range to ingest: from what bronze holds (or the log start) to the current end.

    Raises OffsetsLost when Kafka no longer holds the offsets bronze needs next (retention or
    delete-records ran first) or holds fewer than bronze already has (the topic was re-created):
    starting at the log start would skip the lost events without a word. `accept_lost`
    acknowledges a retention loss (the caller records it); a re-created topic is never accepted,
    because its smaller offsets would make Delta take the new events for a range written already
    (the transaction version is the sum of end offsets)."""
    gaps = offset_gaps(next_offsets, watermarks)
    if gaps and (not accept_lost or any(g.recreated for g in gaps)):
        if any(g.recreated for g in gaps):
            fix = (
                "Move the bronze table aside (a new table starts at the log start) or ingest a "
                "new topic name; continuing would write nothing for the re-created topic."
            )
        else:
            fix = (
                "Check the topic's retention against the bronze schedule; to record the loss and "
                "continue from the log start, materialize bronze_viewing_events with run config "
                "{ops: {bronze_viewing_events: {config: {accept_lost_offsets: true}}}}."
            )
        raise OffsetsLost(topic, "bronze", gaps, fix)
    plan = {}
    for partition, (low, high) in watermarks.items():
        start = max(next_offsets.get(partition, low), low)
        if high > start:
            plan[partition] = (start, high)
    return plan


def range_version(plan: OffsetRange) -> int:
    return sum(end for _, end in plan.values())


def read_range(
    spark: SparkSession, kafka: str | KafkaSettings, topic: str, plan: OffsetRange
) -> DataFrame:
    """The plan's exact offsets as Kafka rows. `kafka` is the cluster's settings, or its
    bootstrap servers with authentication from the environment / local stack."""
    if isinstance(kafka, str):
        kafka = KafkaSettings.from_env(bootstrap_servers=kafka)
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
    )


def to_bronze(raw: DataFrame) -> DataFrame:
    """Kafka rows -> bronze rows: raw payload kept as text, coordinates kept for lineage."""
    return raw.select(
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("value"),
        "topic",
        F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("long").alias("offset"),
        F.col("timestamp").alias("kafka_ts"),
        F.to_date("timestamp").alias("kafka_date"),
        F.current_timestamp().alias("ingested_at"),
    )


def append_bronze(df: DataFrame, path: str, topic: str, version: int) -> None:
    (
        df.write.format("delta")
        .mode("append")
        .partitionBy("kafka_date")
        .option("txnAppId", f"bronze:{topic}")
        .option("txnVersion", version)
        .save(path)
    )
