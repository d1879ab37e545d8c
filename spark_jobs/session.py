"""One SparkSession per process with Delta Lake and the Kafka source configured: the conf is
defined here once, for the Dagster resource (resources/spark.py) and for spark_jobs.submit."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from pyspark.sql import SparkSession

SHUFFLE_PARTITIONS = 4
"""Small by default: the local stack has 2 cores, not 200 tasks' worth."""
DRIVER_MEMORY = "2g"
LOOPBACK = "127.0.0.1"


def session_conf(
    jars: Sequence[str],
    shuffle_partitions: int = SHUFFLE_PARTITIONS,
    driver_memory: str = DRIVER_MEMORY,
    driver_bind_address: str = LOOPBACK,
    driver_host: str = LOOPBACK,
    extra_conf: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Jars are shipped to executors through spark.jars, so a cluster needs no Ivy access."""
    conf = {
        "spark.jars": ",".join(jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.driver.memory": driver_memory,
        "spark.driver.bindAddress": driver_bind_address,
        "spark.driver.host": driver_host,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # Constraint propagation grows with every alias of an expression that is used many
        # times; silver's 40 field reads of one parsed record made it build ~10M expression
        # nodes (jmap) and spend minutes and 6 GB planning one query. Its only gain, inferred
        # filters, does not apply to these plans.
        "spark.sql.constraintPropagation.enabled": "false",
    }
    conf.update(extra_conf or {})
    return conf


def get_session(master: str, app_name: str, conf: Mapping[str, str]) -> SparkSession:
    """The process's session, created on first use. Later calls return the same session,
    which is what keeps a test run to one JVM."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
