"""Fixtures shared by the whole suite: one local stack and one Spark session per test run.

The stack fixture starts the stack only when it is down and stops it again only if it started
it, so a developer's running stack is left as it was found.
"""

from __future__ import annotations

import os

# Before any project import: test uploads go to their own topic, not the one `dagster dev` reads.
os.environ.setdefault("NETFLIX_ASSETS_UPLOADS_TOPIC", "test-title-uploads")

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netflix_assets import settings
from netflix_assets.stack import manager
from netflix_assets.stack.services import all_services
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.postgres import PostgresResource
from resources.redis import RedisResource
from resources.spark import SparkResource

CORE_SERVICES = {s.name for s in all_services()}


@pytest.fixture(scope="session")
def stack() -> Iterator[dict[str, object]]:
    """Starts the core services that are down and stops only those afterwards: an optional
    service (monitoring, the edge, a Flink cluster) or one restarting elsewhere never makes a
    test run stop services it did not start."""
    down = [s.name for s in manager.status() if s.name in CORE_SERVICES and not s.healthy]
    outcome = manager.up(down) if down else {}
    started = [name for name, result in outcome.items() if result.startswith("started")]
    yield manager.endpoints()
    if started:
        manager.down(started)


@pytest.fixture(scope="session")
def kafka_resource(stack: dict[str, object]) -> KafkaResource:
    return KafkaResource(bootstrap_servers=settings.kafka_bootstrap())


@pytest.fixture(scope="session")
def redis_resource(stack: dict[str, object]) -> RedisResource:
    return RedisResource(url=settings.redis_url())


@pytest.fixture(scope="session")
def postgres_resource(stack: dict[str, object]) -> PostgresResource:
    return PostgresResource(dsn=settings.postgres_dsn())


@pytest.fixture(scope="session")
def spark_resource() -> SparkResource:
    return SparkResource(master="local[2]", shuffle_partitions=2)


@pytest.fixture(scope="session")
def spark(spark_resource: SparkResource):
    session = spark_resource.get_session()
    yield session
    session.stop()


@pytest.fixture
def object_store(tmp_path: Path) -> ObjectStoreResource:
    return ObjectStoreResource(root=str(tmp_path / "objects"))


@pytest.fixture
def unique_topic(kafka_resource: KafkaResource) -> str:
    name = f"test-{uuid.uuid4().hex[:10]}"
    kafka_resource.ensure_topics([name], partitions=2)
    return name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def free_tcp_port() -> int:
    """A loopback port nobody listens on right now."""
    return free_port()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible HTTP server (moto's standalone server) on a loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def upload_sensor_tick():
    """One evaluation of the real title_upload_sensor against the stack: (instance, kafka,
    object store, cursor) -> its SensorResult."""
    from dagster import SensorResult, build_sensor_context

    from sensors.uploads import title_upload_sensor

    def tick(instance, kafka: KafkaResource, store, cursor: str | None) -> SensorResult:
        context = build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"kafka": kafka, "object_store": store, "postgres": PostgresResource()},
        )
        result = title_upload_sensor(context)
        assert isinstance(result, SensorResult)
        return result

    return tick
