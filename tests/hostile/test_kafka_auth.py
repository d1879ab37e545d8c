"""A client without the stack's Kafka credentials, against the stack's broker: it must be refused
(no metadata, no produce), and a wrong password must fail SASL authentication. The settings module
refuses configurations that cannot authenticate, naming the setting to fix; and a state folder
made by an older `stack up` (PLAINTEXT, no SCRAM credential) is migrated in place, data kept."""

from __future__ import annotations

import base64
import socket
import stat
import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from netflix_assets import settings
from netflix_assets.clients.kafka import (
    PASSWORD_SECRET,
    KafkaClient,
    KafkaConfigError,
    KafkaSettings,
)
from netflix_assets.stack.process import run, spawn, terminate, wait_until
from netflix_assets.stack.services import KafkaService


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((settings.HOST, 0))
        return sock.getsockname()[1]


def _errors_seen(conf: dict, seconds: float = 8.0) -> tuple[bool, list[KafkaError]]:
    """Whether a client with `conf` got the broker's metadata, and the errors it reported."""
    errors: list[KafkaError] = []
    admin = AdminClient({**conf, "error_cb": errors.append, "log_level": 0})
    try:
        admin.list_topics(timeout=seconds)
    except KafkaException:
        admin.poll(1)  # serves the error callbacks
        return False, errors
    return True, errors


@pytest.mark.stack
def test_the_stack_client_authenticates(stack) -> None:
    """The control: the project's own settings reach the broker (so the refusals below are
    about credentials, not a broker that is down)."""
    kafka = KafkaSettings.from_env()
    assert kafka.security_protocol == "SASL_PLAINTEXT" and kafka.sasl_mechanism.startswith("SCRAM")
    reached, _ = _errors_seen(kafka.confluent())
    assert reached


@pytest.mark.stack
def test_an_unauthenticated_client_is_refused(stack, unique_topic) -> None:
    conf = {"bootstrap.servers": settings.kafka_bootstrap(), "security.protocol": "PLAINTEXT"}
    reached, _ = _errors_seen(conf, seconds=5)
    assert not reached
    delivered: list[object] = []
    producer = Producer({**conf, "message.timeout.ms": 3000, "log_level": 0})
    producer.produce(unique_topic, b"sneaked in", on_delivery=lambda e, m: delivered.append(e))
    producer.flush(10)
    assert delivered and delivered[0] is not None, "the unauthenticated write was delivered"
    assert KafkaClient(KafkaSettings.from_env()).watermarks(unique_topic) == {0: (0, 0), 1: (0, 0)}


@pytest.mark.stack
def test_a_wrong_password_fails_sasl_authentication(stack) -> None:
    wrong = KafkaSettings.from_env(sasl_password="guess-" + uuid.uuid4().hex)
    reached, errors = _errors_seen(wrong.confluent())
    assert not reached
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert any("Authentication failed" in e.str() for e in errors), errors


@pytest.mark.stack
def test_the_password_and_broker_config_are_private(stack) -> None:
    secret = settings.secrets_dir() / PASSWORD_SECRET
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 32
    # server.properties holds the broker's own JAAS line with the password.
    assert stat.S_IMODE(KafkaService().config.stat().st_mode) == 0o600


def test_settings_name_what_is_missing(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NETFLIX_ASSETS_STATE", str(tmp_path))  # no generated secret there
    monkeypatch.delenv("NETFLIX_ASSETS_KAFKA_PASSWORD", raising=False)
    with pytest.raises(KafkaConfigError, match="NETFLIX_ASSETS_KAFKA_PASSWORD"):
        KafkaSettings.from_env()
    with pytest.raises(KafkaConfigError, match="security protocol 'SSL_PLAINTEXT'"):
        KafkaSettings.from_env(security_protocol="ssl_plaintext", sasl_password="x")
    with pytest.raises(KafkaConfigError, match="mechanism 'PLAIN'"):
        KafkaSettings.from_env(sasl_mechanism="plain", sasl_password="x")
    with pytest.raises(KafkaConfigError, match="NETFLIX_ASSETS_KAFKA_BOOTSTRAP"):
        KafkaSettings(bootstrap_servers=" ").validate()


def test_every_client_kind_carries_the_credential() -> None:
    kafka = KafkaSettings("h:1", sasl_username="u", sasl_password='p"q\\r')
    assert kafka.confluent()["sasl.password"] == 'p"q\\r'
    jaas = kafka.spark_options()["kafka.sasl.jaas.config"]
    assert jaas == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="u" password="p\\"q\\\\r";'
    )
    flink = kafka.flink_properties()
    assert flink["properties.security.protocol"] == "SASL_PLAINTEXT"
    # The SQL connector relocates the Kafka client: the unshaded class is not in its jar.
    assert flink["properties.sasl.jaas.config"].startswith(
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule"
    )
    assert "password" not in repr(kafka)


@pytest.mark.stack
@pytest.mark.slow
def test_a_plaintext_state_folder_is_migrated_in_place(monkeypatch, tmp_path) -> None:
    """A broker formatted and run by an older `stack up` (PLAINTEXT, no SCRAM credential):
    `stack up` adds the credential, keeps its topics and messages, and a second start does not
    migrate again."""
    monkeypatch.setenv("NETFLIX_ASSETS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("NETFLIX_ASSETS_KAFKA_PORT", str(free_port()))
    monkeypatch.setenv("NETFLIX_ASSETS_KAFKA_CONTROLLER_PORT", str(free_port()))
    broker = KafkaService()
    broker.home.mkdir(parents=True)
    old_config = broker.home / "old.properties"
    old_config.write_text(broker._properties("PLAINTEXT", broker.port))
    cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    fmt = [*broker._java(), "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster]
    assert run([*fmt, "-c", str(old_config)], "format", 120).returncode == 0
    pid = spawn([*broker._java(), "kafka.Kafka", str(old_config)], broker.log)
    plain = KafkaClient(KafkaSettings(broker.endpoint, security_protocol="PLAINTEXT"))
    try:
        assert wait_until(lambda: _errors_seen(plain.settings.confluent(), 2)[0], 90)
        plain.ensure_topics(["kept"])
        producer = plain.producer()
        for i in range(3):
            producer.produce("kept", str(i).encode())
        assert producer.flush(30) == 0
    finally:
        terminate(pid)

    assert broker.up().startswith("started")
    try:
        assert (broker.home / "kafka-migration.log").exists()
        authenticated = KafkaClient(KafkaSettings.from_env())
        assert authenticated.watermarks("kept") == {0: (0, 3)}
        assert not _errors_seen(plain.settings.confluent(), 5)[0]
        (broker.home / "kafka-migration.log").unlink()
        broker.down()
        assert broker.up().startswith("started")
        assert not (broker.home / "kafka-migration.log").exists()
        assert authenticated.watermarks("kept") == {0: (0, 3)}
    finally:
        broker.down()
