"""Spark as a Dagster resource: settings from run config or the environment, the session and its
Delta configuration from spark_jobs/session.py."""

from __future__ import annotations

import os

from dagster import ConfigurableResource
from pydantic import Field
from pyspark.sql import SparkSession

from netflix_assets import settings
from spark_jobs import session


class SparkResource(ConfigurableResource):
    """`master` is `local[*]` on one machine and a `spark://` or `k8s://` URL on a cluster; the
    same transformations run either way."""

    master: str = Field(
        default=os.environ.get("NETFLIX_ASSETS_SPARK_MASTER", "local[*]"),
        description="Spark master URL (env NETFLIX_ASSETS_SPARK_MASTER).",
    )
    app_name: str = "netflix-assets"
    jars: list[str] | None = Field(
        default=None,
        description="Jars for Delta and the Kafka source; default: NETFLIX_ASSETS_SPARK_JARS, "
        "else the ones the bootstrap resolved.",
    )
    shuffle_partitions: int = session.SHUFFLE_PARTITIONS
    driver_memory: str = session.DRIVER_MEMORY
    driver_bind_address: str = Field(
        default=os.environ.get("NETFLIX_ASSETS_SPARK_DRIVER_BIND_ADDRESS", session.LOOPBACK),
        description="Where the driver's RPC and block-manager ports listen. Loopback by default: "
        "local[*] needs no one else to reach them, and Spark's RPC has no authentication "
        "unless spark.authenticate is set. On a cluster, the pod/host address executors use "
        "(env NETFLIX_ASSETS_SPARK_DRIVER_BIND_ADDRESS).",
    )
    driver_host: str = Field(
        default=os.environ.get("NETFLIX_ASSETS_SPARK_DRIVER_HOST", session.LOOPBACK),
        description="The address the driver advertises to executors "
        "(env NETFLIX_ASSETS_SPARK_DRIVER_HOST).",
    )
    extra_conf: dict[str, str] = Field(default_factory=dict)

    def session_conf(self) -> dict[str, str]:
        return session.session_conf(
            self.jars if self.jars is not None else settings.jars("spark"),
            self.shuffle_partitions,
            self.driver_memory,
            self.driver_bind_address,
            self.driver_host,
            self.extra_conf,
        )

    def get_session(self) -> SparkSession:
        return session.get_session(self.master, self.app_name, self.session_conf())
