"""The local stack's own behaviour: idempotent up, status, and recovery from faults."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from netflix_assets import settings
from netflix_assets.stack import jars, manager, services
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.process import wait_until
from netflix_assets.stack.services import KafkaService, PostgresService, RedisService
from resources.kafka import KafkaResource

pytestmark = pytest.mark.stack
CLI = [sys.executable, "-m", "netflix_assets.cli"]


def test_up_twice_is_idempotent(stack: dict[str, object]) -> None:
    outcome = manager.up()
    assert all(v.startswith("already running") for v in outcome.values()), outcome


def test_status_json_lists_every_endpoint(stack: dict[str, object]) -> None:
    result = subprocess.run([*CLI, "stack", "status", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    # The optional monitoring services are listed too while they run (docs/OPERATIONS.md).
    assert {s["name"] for s in payload["services"] if s["healthy"]} >= {
        "kafka",
        "redis",
        "postgres",
    }
    for key in ("kafka_bootstrap_servers", "redis_url", "postgres_dsn", "object_store_root"):
        assert payload[key]
    assert "viewing-events" in payload["kafka_topics"]


def test_killed_broker_recovers_and_keeps_messages(
    kafka_resource: KafkaResource, unique_topic: str
) -> None:
    producer = kafka_resource.producer()
    for i in range(5):
        producer.produce(unique_topic, value=str(i).encode())
    assert producer.flush(15) == 0

    broker = KafkaService()
    os.kill(broker.pid(), signal.SIGKILL)
    assert wait_until(lambda: not broker.running(), 10)

    assert manager.up(["kafka"])["kafka"].startswith("started")
    marks = kafka_resource.watermarks(unique_topic)
    assert sum(high - low for low, high in marks.values()) == 5
    producer = kafka_resource.producer()
    producer.produce(unique_topic, value=b"after-restart")
    assert producer.flush(15) == 0


def test_old_record_timestamps_are_not_aged_out(
    kafka_resource: KafkaResource, unique_topic: str
) -> None:
    """Simulated history is stamped with its event times; the local broker must keep it (it
    had 7-day time retention, which deleted a backfill of last month at its next check)."""
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(ConfigResource.Type.TOPIC, unique_topic)
    admin = kafka_resource.admin()  # kept alive until the answer arrives
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["retention.ms"].value == "-1"
    assert int(config["retention.bytes"].value) >= 2**30


def test_stale_pid_file_is_cleaned(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NETFLIX_ASSETS_STATE", str(tmp_path))
    monkeypatch.setenv("NETFLIX_ASSETS_REDIS_PORT", str(_free_port()))
    redis = RedisService()
    redis.home.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    redis.pidfile.write_text(f"{dead.pid}\n")
    try:
        assert redis.up() == "started"
        assert redis.pid() != dead.pid
    finally:
        redis.down()
    assert not redis.running()


def test_taken_port_names_the_fix(tmp_path: Path, monkeypatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        monkeypatch.setenv("NETFLIX_ASSETS_STATE", str(tmp_path))
        monkeypatch.setenv("NETFLIX_ASSETS_REDIS_PORT", str(squatter.getsockname()[1]))
        with pytest.raises(StackError, match="NETFLIX_ASSETS_REDIS_PORT"):
            RedisService().up()


def test_missing_java_is_reported(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NETFLIX_ASSETS_CACHE", str(tmp_path))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mvn").symlink_to(shutil.which("mvn"))
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(StackError, match="Java is not installed"):
        jars.resolve("kafka")


def test_damaged_jar_cache_is_repaired(monkeypatch, tmp_path: Path) -> None:
    real_cache = jars.settings.cache_dir()
    jars.resolve("kafka")
    # A private cache sharing the Maven repository's files (hard links), so no download happens.
    subprocess.run(["cp", "-al", str(real_cache / "m2"), str(tmp_path / "m2")], check=True)
    monkeypatch.setenv("NETFLIX_ASSETS_CACHE", str(tmp_path))
    first = jars.resolve("kafka")
    victim = next(j for j in first if j.name.startswith("kafka-clients"))
    victim.write_bytes(victim.read_bytes()[:1000])  # a cut download
    assert jars.damaged_jars(jars.group_dir("kafka")) == [victim]
    repaired = jars.resolve("kafka")
    assert [j.name for j in repaired] == [j.name for j in first]
    assert jars.damaged_jars(jars.group_dir("kafka")) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_down_stops_only_what_it_started(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NETFLIX_ASSETS_STATE", str(tmp_path))
    port = _free_port()
    foreign = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: _listening(port), 10)
        monkeypatch.setenv("NETFLIX_ASSETS_REDIS_PORT", str(port))
        assert RedisService().down() == "not running"
        time.sleep(0.2)
        assert foreign.poll() is None
    finally:
        foreign.terminate()
        foreign.wait()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def private_postgres(tmp_path: Path, monkeypatch) -> Iterator[PostgresService]:
    """A PostgreSQL cluster of this test's own (state folder and port), removed afterwards."""
    monkeypatch.setenv("NETFLIX_ASSETS_STATE", str(tmp_path))
    monkeypatch.setenv("NETFLIX_ASSETS_POSTGRES_PORT", str(_free_port()))
    service = PostgresService()
    try:
        yield service
    finally:
        service.down()
        shutil.rmtree(service.home, ignore_errors=True)


def test_a_trust_cluster_is_moved_to_passwords_and_keeps_its_data(private_postgres) -> None:
    """A cluster from an older `stack up` (trust everywhere, superuser application role, no
    secrets) comes back requiring a password, its role demoted, its tables kept."""
    service = private_postgres
    assert service.up() == "started"
    service.admin_sql("ALTER ROLE netflix SUPERUSER")
    with psycopg.connect(settings.postgres_dsn()) as conn:  # the app's own table, as before
        conn.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)")
    service.down()
    (service.data / "pg_hba.conf").write_text("local all all trust\nhost all all 0.0.0.0/0 trust\n")
    shutil.rmtree(settings.secrets_dir())
    assert service.up() == "started"
    assert "trust" not in (service.data / "pg_hba.conf").read_text()
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            host=settings.HOST, port=service.port, user="postgres", dbname="postgres"
        ).close()
    with psycopg.connect(settings.postgres_dsn()) as conn:
        assert conn.execute("SELECT id FROM kept").fetchall() == [(7,)]
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)
    assert service.up() == "already running"  # and a second up changes nothing


def test_a_hung_server_fails_stack_setup_with_its_name(private_postgres, monkeypatch) -> None:
    """psql against a socket that accepts and never answers: `stack up` used to wait forever."""
    service = private_postgres
    monkeypatch.setattr(services, "SETUP_TIMEOUT_S", 2.0)
    service.home.mkdir(parents=True, exist_ok=True)
    os.chmod(service.home, 0o755)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = service.home / f".s.PGSQL.{service.port}"
    silent.bind(str(path))
    os.chmod(path, 0o777)
    silent.listen()
    started = time.monotonic()
    try:
        with pytest.raises(StackError, match="did not finish within 2s"):
            service.admin_sql("SELECT 1")
    finally:
        silent.close()
        path.unlink()
    assert time.monotonic() - started < 15
