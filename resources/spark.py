"""Spark: one SparkSession per process with Delta Lake and the Kafka source configured."""

from __future__ import annotations

import os
import sys

from dagster import ConfigurableResource
from pydantic import Field
from pyspark.sql import SparkSession

from netflix_assets.stack import jars


class SparkResource(ConfigurableResource):
    """`master` is `local[*]` on one machine and a `spark://` or `k8s://` URL on a cluster; the
    same transformations run either way. Jars come from the local Maven cache and are shipped to
    executors through spark.jars, so a cluster needs no Ivy access of its own."""

    master: str = Field(
        default=os.environ.get("NETFLIX_ASSETS_SPARK_MASTER", "local[*]"),
        description="Spark master URL (env NETFLIX_ASSETS_SPARK_MASTER).",
    )
    app_name: str = "netflix-assets"
    shuffle_partitions: int = Field(
        default=4,
        description="Small by default: the local stack has 2 cores, not 200 tasks' worth.",
    )
    driver_memory: str = "2g"
    driver_bind_address: str = Field(
        default=os.environ.get("NETFLIX_ASSETS_SPARK_DRIVER_BIND_ADDRESS", "127.0.0.1"),
        description="Where the driver's RPC and block-manager ports listen. Loopback by default: "
        "local[*] needs no one else to reach them, and Spark's RPC has no authentication "
        "unless spark.authenticate is set. On a cluster, the pod/host address executors use "
        "(env NETFLIX_ASSETS_SPARK_DRIVER_BIND_ADDRESS).",
    )
    driver_host: str = Field(
        default=os.environ.get("NETFLIX_ASSETS_SPARK_DRIVER_HOST", "127.0.0.1"),
        description="The address the driver advertises to executors "
        "(env NETFLIX_ASSETS_SPARK_DRIVER_HOST).",
    )
    extra_conf: dict[str, str] = Field(default_factory=dict)

    def session_conf(self) -> dict[str, str]:
        conf = {
            "spark.jars": ",".join(str(j) for j in jars.resolve("spark")),
            "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.driver.memory": self.driver_memory,
            "spark.driver.bindAddress": self.driver_bind_address,
            "spark.driver.host": self.driver_host,
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
        conf.update(self.extra_conf)
        return conf

    def get_session(self) -> SparkSession:
        """The process's session, created on first use. Later calls return the same session,
        which is what keeps a test run to one JVM."""
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(self.master).appName(self.app_name)
        for key, value in self.session_conf().items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
