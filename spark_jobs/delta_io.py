"""Delta writes the lake uses: a day replaced atomically, and compaction afterwards."""

from __future__ import annotations

from datetime import date

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession


def is_delta(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def replace_day(df: DataFrame, path: str, column: str, day: date) -> None:
    """Overwrite one date partition in one commit (replaceWhere): re-running a day is idempotent
    and readers see the old day or the new one, never a mix."""
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{column} = '{day.isoformat()}'")
        .partitionBy(column)
        .save(path)
    )


def compact_day(spark: SparkSession, path: str, column: str, day: date) -> None:
    DeltaTable.forPath(spark, path).optimize().where(
        f"{column} = '{day.isoformat()}'"
    ).executeCompaction()


def version(spark: SparkSession, path: str) -> int:
    return DeltaTable.forPath(spark, path).history(1).collect()[0]["version"]
