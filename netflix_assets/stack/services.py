"""The three services of the local stack. Each knows how to start, check and stop itself.

Each service keeps its data, log and pid file under <state>/<name>/. `up` is idempotent: a live
service is left alone, a stale pid file is removed, and a port held by a process that is not ours
is reported with the variable that moves the port.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import shutil
import socket
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from netflix_assets import settings
from netflix_assets.clients import kafka as kafka_client
from netflix_assets.clients.kafka import KafkaClient, KafkaSettings
from netflix_assets.stack import jars, secrets
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.process import (
    alive,
    log_tail,
    port_open,
    read_pid,
    run,
    spawn,
    terminate,
    wait_until,
)

# Bounds on one setup command; generous for a contended 2-core machine, finite so a hung
# server or tool fails `stack up` with its name instead of waiting forever.
SETUP_TIMEOUT_S = float(os.environ.get("NETFLIX_ASSETS_STACK_COMMAND_TIMEOUT_S", "120"))


@dataclass
class Service:
    name: str
    port: int
    port_env: str
    marker: str
    start_timeout_s: float = 60.0
    endpoint: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return settings.state_dir() / self.name

    @property
    def pidfile(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.log"

    def pid(self) -> int | None:
        return read_pid(self.pidfile)

    def running(self) -> bool:
        return alive(self.pid(), self.marker)

    def healthy(self) -> bool:
        return self.running() and port_open(self.port)

    def up(self) -> str:
        if self.healthy():
            return "already running"
        if self.running():
            if wait_until(lambda: port_open(self.port), self.start_timeout_s):
                return "already running"
            raise StackError(
                f"{self.name} (pid {self.pid()}) runs but does not listen on "
                f"{self.port}; see {self.log}\n{log_tail(self.log)}"
            )
        self.pidfile.unlink(missing_ok=True)
        # A killed process can hold its listening socket for a moment while its threads exit.
        if not wait_until(lambda: not port_open(self.port), 5.0):
            raise StackError(
                f"port {self.port} for {self.name} is taken by a process this stack did not start; "
                f"stop it or choose another port with {self.port_env}=<port>"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self.record_pid(self.start())
        if not wait_until(self.healthy, self.start_timeout_s):
            raise StackError(
                f"{self.name} did not come up within {self.start_timeout_s:.0f}s; "
                f"log {self.log}:\n{log_tail(self.log)}"
            )
        self.after_start()
        return "started"

    def down(self) -> str:
        pid = self.pid()
        if not alive(pid, self.marker):
            self.pidfile.unlink(missing_ok=True)
            return "not running"
        self.stop(pid)
        self.pidfile.unlink(missing_ok=True)
        return "stopped"

    def record_pid(self, pid: int) -> None:
        self.pidfile.write_text(f"{pid}\n")

    def prepare(self) -> None:
        """Create config and data folders before the first start."""

    def start(self) -> int:
        raise NotImplementedError

    def after_start(self) -> None:
        """Create users, databases or topics once the service answers."""

    def stop(self, pid: int) -> None:
        terminate(pid)


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise StackError(f"{binary} not found: run `make bootstrap` (apt-get install {package})")
    return path


class KafkaService(Service):
    """Apache Kafka in KRaft mode, one node acting as broker and controller.

    Clients authenticate with SASL/SCRAM-SHA-512 on the loopback listener, as user `netflix`
    with the password generated into <state>/secrets (docs/SECURITY.md). The SCRAM credential is
    written into the metadata log at format time (`format --add-scram`); a state folder formatted
    by an older `stack up` (PLAINTEXT, no credential) is migrated in place, topics and offsets
    kept: the broker is started once on a temporary PLAINTEXT listener on a free loopback port,
    the credential is upserted through the admin API, and the broker is stopped again. A file
    records a hash of the credential, so a changed password is upserted the same way and a
    migrated folder is never migrated twice."""

    MECHANISM = kafka_client.DEFAULT_MECHANISM
    LISTENER = "SASL_PLAINTEXT"

    def __init__(self) -> None:
        ports = settings.ports()
        super().__init__(
            name="kafka",
            port=ports.kafka,
            port_env="NETFLIX_ASSETS_KAFKA_PORT",
            marker="kafka.Kafka",
            start_timeout_s=90.0,
            endpoint=f"{settings.HOST}:{ports.kafka}",
        )
        self.controller_port = ports.kafka_controller

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def credential_marker(self) -> Path:
        return self.home / "scram-credential.sha256"

    def _credential(self) -> tuple[str, str]:
        return kafka_client.DEFAULT_USER, secrets.ensure(secrets.KAFKA_PASSWORD)

    def _credential_digest(self, password: str) -> str:
        user = kafka_client.DEFAULT_USER
        return hashlib.sha256(f"{self.MECHANISM}:{user}:{password}".encode()).hexdigest()

    def _credential_current(self) -> bool:
        """Whether the broker holds the credential of the password file (read, never created:
        `stack status` must not generate secrets)."""
        password = settings.local_secret(secrets.KAFKA_PASSWORD)
        try:
            recorded = self.credential_marker.read_text().strip()
        except FileNotFoundError:
            return False
        return password is not None and recorded == self._credential_digest(password)

    def client_settings(self) -> KafkaSettings:
        """The stack's own clients: the local credential, whatever the environment says."""
        user, password = self._credential()
        return KafkaSettings(
            bootstrap_servers=self.endpoint,
            security_protocol=self.LISTENER,
            sasl_mechanism=self.MECHANISM,
            sasl_username=user,
            sasl_password=password,
        )

    def _properties(self, listener: str, port: int) -> str:
        """server.properties with one client listener: SASL_PLAINTEXT normally, or a PLAINTEXT
        one named MIGRATION while a credential is added to an old state folder. The controller
        listener stays PLAINTEXT on loopback: only this node's own broker connects to it."""
        host = settings.HOST
        protocol = "PLAINTEXT" if listener == "MIGRATION" else listener
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={host}:{self.controller_port}",
            f"listeners={listener}://{host}:{port},CONTROLLER://{host}:{self.controller_port}",
            f"advertised.listeners={listener}://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={listener}",
            f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{protocol}",
        ]
        if protocol.startswith("SASL_"):
            prefix = f"listener.name.{listener.lower()}.{self.MECHANISM.lower()}"
            jaas = self.client_settings().jaas_config()
            lines += [
                f"sasl.enabled.mechanisms={self.MECHANISM}",
                f"sasl.mechanism.inter.broker.protocol={self.MECHANISM}",
                # The broker's own connections to its listener log in as the stack's user.
                f"{prefix}.sasl.jaas.config={jaas}",
            ]
        lines += [
            f"log.dirs={self.home / 'data'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            # No time-based retention: simulated history (a backfill of last month) carries
            # its event times as record timestamps, and a 7-day limit deleted it at the
            # next retention check, minutes after it was produced. Size bounds the disk.
            "log.retention.ms=-1",
            f"log.retention.bytes={2 * 1024**3}",
            "",
        ]
        return "\n".join(lines)

    def _write_config(self, path: Path, text: str) -> None:
        """0600 from the start: the file holds the broker's SCRAM password."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        path.chmod(0o600)

    def _java(self) -> list[str]:
        java = _require("java", "openjdk-17-jre-headless")
        log4j = Path(__file__).resolve().parent / "poms" / "kafka-log4j2.properties"
        return [
            java,
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            jars.classpath("kafka"),
        ]

    def up(self) -> str:
        """A broker still running with an older configuration (no SCRAM credential recorded, or
        another password) is stopped first, so `stack up` migrates it instead of reporting a
        broker its clients cannot log in to."""
        if self.running() and not self._credential_current():
            self.down()
            return f"restarted with SASL/SCRAM: {super().up()}"
        return super().up()

    def prepare(self) -> None:
        self._write_config(self.config, self._properties(self.LISTENER, self.port))
        if not (self.home / "data" / "meta.properties").exists():
            self._format()
        elif not self._credential_current():
            self._add_credential_in_place()
        self.credential_marker.write_text(self._credential_digest(self._credential()[1]) + "\n")

    def _format_args(self) -> list[str]:
        """How the node joins its quorum at format time: alone, under a new cluster id (the
        three-broker cluster's nodes share one id and a static quorum: stack/kafka_cluster)."""
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        return ["--standalone", "-t", cluster_id]

    def _format(self) -> None:
        user, password = self._credential()
        cmd = [
            *self._java(),
            "kafka.tools.StorageTool",
            "format",
            *self._format_args(),
            "-c",
            str(self.config),
            "--add-scram",
            f"{self.MECHANISM}=[name={user},password={password}]",
        ]
        result = run(cmd, "formatting Kafka's KRaft storage", SETUP_TIMEOUT_S)
        if result.returncode != 0:
            output = f"{result.stdout}{result.stderr}".replace(password, "<password>")
            raise StackError(f"formatting Kafka's KRaft storage failed:\n{output}")

    def _add_credential_in_place(self) -> None:
        """Upsert the SCRAM credential into an existing metadata log through a temporary
        PLAINTEXT listener on a free loopback port (nothing else knows that port)."""
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        port = _free_port()
        migration = self.home / "migration.properties"
        self._write_config(migration, self._properties("MIGRATION", port))
        log = self.home / "kafka-migration.log"
        pid = spawn([*self._java(), "kafka.Kafka", str(migration)], log)
        admin = None
        try:

            def answers() -> bool:
                nonlocal admin
                # No marker: a JVM's command line reads empty for a moment after exec.
                if not alive(pid, ""):
                    raise StackError(
                        f"Kafka exited while receiving its SCRAM credential; log {log}:\n"
                        f"{log_tail(log)}"
                    )
                if not port_open(port):
                    return False
                if admin is None:
                    plain = KafkaSettings(f"{settings.HOST}:{port}", security_protocol="PLAINTEXT")
                    admin = KafkaClient(plain).admin()
                try:
                    admin.list_topics(timeout=2)
                except Exception:
                    return False
                return True

            if not wait_until(answers, self.start_timeout_s):
                raise StackError(
                    "Kafka did not come up to receive its SCRAM credential within "
                    f"{self.start_timeout_s:.0f}s; log {log}:\n{log_tail(log)}"
                )
            user, password = self._credential()
            mechanism = getattr(ScramMechanism, self.MECHANISM.replace("-", "_"))
            info = ScramCredentialInfo(mechanism, 8192)
            futures = admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(user, info, password.encode())]
            )
            for future in futures.values():
                future.result(SETUP_TIMEOUT_S)
        finally:
            del admin  # closes its connections before the broker goes away
            terminate(pid)
            migration.unlink(missing_ok=True)

    def start(self) -> int:
        return spawn([*self._java(), "kafka.Kafka", str(self.config)], self.log)

    def healthy(self) -> bool:
        if not super().healthy() or not self._credential_current():
            return False
        # 5 s: a SCRAM handshake on a loaded 2-core machine must not read as "down" (a test
        # session would then stop a broker others use).
        try:
            KafkaClient(self.client_settings()).admin().list_topics(timeout=5)
        except Exception:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((settings.HOST, 0))
        return sock.getsockname()[1]


class RedisService(Service):
    """Redis on loopback with a password (`requirepass`, generated into <state>/secrets). The
    password is in a 0600 config file, not on the command line where `ps` would show it."""

    def __init__(self) -> None:
        port = settings.ports().redis
        super().__init__(
            name="redis",
            port=port,
            port_env="NETFLIX_ASSETS_REDIS_PORT",
            marker="redis-server",
            endpoint=f"redis://{settings.HOST}:{port}/0",
        )

    @property
    def config(self) -> Path:
        return self.home / "redis.conf"

    def prepare(self) -> None:
        password = secrets.ensure(secrets.REDIS_PASSWORD)
        lines = [
            f"bind {settings.HOST}",
            f"port {self.port}",
            f"dir {self.home}",
            "save 60 1000",
            "appendonly no",
            "protected-mode yes",
            f"requirepass {password}",
            "",
        ]
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines))
        self.config.chmod(0o600)

    def start(self) -> int:
        binary = _require("redis-server", "redis-server")
        return spawn([binary, str(self.config)], self.log)


class PostgresService(Service):
    """A private PostgreSQL cluster, run as the `postgres` OS user when we are root (initdb
    refuses root). Authentication: TCP (loopback only) needs a password (scram-sha-256); the
    application role `netflix` owns its database and is not a superuser (CREATEDB only, for
    scratch test databases); the superuser `postgres` is reachable only through the cluster's
    unix socket by the OS user that runs the server (peer authentication), which is how `stack
    up` administers it. A cluster made by an older `stack up` (trust, superuser app role) is
    moved to this on its next start, data kept."""

    def __init__(self) -> None:
        port = settings.ports().postgres
        super().__init__(
            name="postgres",
            port=port,
            port_env="NETFLIX_ASSETS_POSTGRES_PORT",
            marker="postgres",
            endpoint=f"postgresql://{settings.POSTGRES_USER}@{settings.HOST}:{port}/{settings.POSTGRES_DB}",
        )

    @property
    def home(self) -> Path:
        """<state>/postgres, unless we are root and the `postgres` OS user cannot reach the
        state folder (a clone under a private folder): then a folder in postgres's own home,
        named after the state folder so two clones never share a cluster."""
        preferred = settings.state_dir() / self.name
        if os.geteuid() != 0 or _searchable_by_others(preferred):
            return preferred
        digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
        return Path("/var/lib/postgresql") / f"netflix-assets-{digest}"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def pidfile(self) -> Path:
        return self.data / "postmaster.pid"

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    @staticmethod
    def _bin(name: str) -> str:
        found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        if found:
            return str(found[-1])
        return _require(name, "postgresql")

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError(
                "running as root needs the `postgres` OS user: apt-get install postgresql"
            ) from exc
        return ["runuser", "-u", "postgres", "--", *cmd]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def prepare(self) -> None:
        self._chown(self.home)
        if (self.data / "PG_VERSION").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        self._chown(self.data)
        cmd = self._as_owner(
            [
                self._bin("initdb"),
                "-D",
                str(self.data),
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-instructions",
            ]
        )
        result = run(cmd, "initdb", SETUP_TIMEOUT_S)
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def _write_auth_config(self) -> None:
        """pg_hba.conf and pg_ident.conf, rewritten at every start (so an old trust cluster is
        migrated): peer for the admin on the socket, passwords for everyone else."""
        owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        hba = "\n".join(
            [
                "# Written by `netflix-assets stack up`; edits are overwritten (docs/SECURITY.md).",
                "local   all   postgres                  peer map=stack_admin",
                "local   all   all                       scram-sha-256",
                "host    all   all       127.0.0.1/32    scram-sha-256",
                "host    all   all       ::1/128         scram-sha-256",
                "",
            ]
        )
        ident = f"stack_admin   {owner}   postgres\n"
        for name, text in (("pg_hba.conf", hba), ("pg_ident.conf", ident)):
            path = self.data / name
            path.write_text(text)
            path.chmod(0o600)
            self._chown(path)

    def start(self) -> int:
        self.log.touch()
        self._chown(self.log)
        self._write_auth_config()
        options = (
            f"-p {self.port} -c listen_addresses={settings.HOST} "
            f"-c unix_socket_directories={self.home} -c unix_socket_permissions=0770 "
            "-c password_encryption=scram-sha-256 -c max_connections=200 "
            "-c shared_buffers=128MB -c fsync=on "
            # A dev box has no replica and no WAL archive: with wal_level=minimal the day
            # partitions that viewing_history's load creates and fills in one transaction
            # write no WAL (docs/PRODUCT.md, "Speed"; production keeps replica).
            "-c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=4GB"
        )
        cmd = self._as_owner(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        result = run(cmd, "pg_ctl start", SETUP_TIMEOUT_S)
        if result.returncode != 0:
            raise StackError(
                f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{log_tail(self.log)}"
            )
        return self.pid() or 0

    def record_pid(self, pid: int) -> None:
        """postmaster.pid is PostgreSQL's own pid file; it is written by the server."""

    def admin_sql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser through the unix socket (peer authentication); the SQL goes
        on stdin, so a password in it never shows in `ps`."""
        cmd = self._as_owner(
            [
                self._bin("psql"),
                "-h",
                str(self.home),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-f",
                "-",
            ]
        )
        result = run(cmd, f"psql as the PostgreSQL admin on {database}", SETUP_TIMEOUT_S, sql)
        if result.returncode != 0:
            raise StackError(
                f"PostgreSQL admin SQL failed on {database}: {result.stderr.strip()}\n"
                f"(the admin connects through the socket in {self.home} as OS user "
                f"{'postgres' if os.geteuid() == 0 else 'running the server'})"
            )
        return result.stdout.strip()

    def after_start(self) -> None:
        """The application role and database, idempotently: created if missing, and an older
        superuser role demoted, its password (re)set from <state>/secrets."""
        user, db = settings.POSTGRES_USER, settings.POSTGRES_DB
        password = secrets.ensure(secrets.POSTGRES_PASSWORD)
        attributes = f"LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD '{password}'"
        self.admin_sql(
            f"""DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{user}') THEN
    ALTER ROLE {user} {attributes};
  ELSE
    CREATE ROLE {user} {attributes};
  END IF;
END $$;"""
        )
        if not self.admin_sql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
            self.admin_sql(f"CREATE DATABASE {db} OWNER {user}")
        self.admin_sql(f"ALTER DATABASE {db} OWNER TO {user}")
        # Migrations need btree_gist (exclusion constraints); created here by the admin, and in
        # template1 so the scratch databases tests create inherit it.
        for database in (db, "template1"):
            self.admin_sql("CREATE EXTENSION IF NOT EXISTS btree_gist", database)
        self.admin_sql(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")

    def stop(self, pid: int) -> None:
        cmd = self._as_owner(
            [self._bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        )
        if run(cmd, "pg_ctl stop", SETUP_TIMEOUT_S).returncode != 0:
            terminate(pid)

    def down(self) -> str:
        if not self.running():
            return "not running"
        self.stop(self.pid() or 0)
        return "stopped"


def _searchable_by_others(path: Path) -> bool:
    """Whether every existing folder above path lets other users through (o+x)."""
    return all(
        folder.stat().st_mode & stat.S_IXOTH for folder in [path, *path.parents] if folder.exists()
    )


def all_services() -> list[Service]:
    return [KafkaService(), RedisService(), PostgresService()]
