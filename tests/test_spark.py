"""The Spark resource: Delta writes and reads, and the Kafka source reading exact offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from resources.kafka import KafkaResource


def test_delta_write_read(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "delta")
    spark.range(0, 100).withColumnRenamed("id", "n").write.format("delta").save(path)
    spark.range(100, 150).withColumnRenamed("id", "n").write.format("delta").mode("append").save(
        path
    )
    df = spark.read.format("delta").load(path)
    assert df.count() == 150
    history = DeltaTable.forPath(spark, path).history().collect()
    assert [h["version"] for h in history] == [1, 0]


@pytest.mark.stack
def test_kafka_source_reads_offset_range(
    spark, kafka_resource: KafkaResource, unique_topic: str
) -> None:
    producer = kafka_resource.producer()
    for i in range(20):
        producer.produce(unique_topic, value=json.dumps({"n": i}), partition=i % 2)
    assert producer.flush(15) == 0
    offsets = json.dumps({unique_topic: {"0": 0, "1": 0}})
    df = (
        spark.read.format("kafka")
        .options(**kafka_resource.spark_options())
        .option("subscribe", unique_topic)
        .option("startingOffsets", offsets)
        .option("endingOffsets", "latest")
        .load()
    )
    rows = df.selectExpr("CAST(value AS STRING) AS v", "partition", "offset").collect()
    assert sorted(json.loads(r.v)["n"] for r in rows) == list(range(20))
    assert {r.partition for r in rows} == {0, 1}
