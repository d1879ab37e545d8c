"""A local user without the stack's secrets, against the stack's services: PostgreSQL and Redis
must ask for credentials, and the application's own role must not be able to run programs on
the server (`COPY ... TO PROGRAM`, a superuser's power)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from psycopg.conninfo import conninfo_to_dict

from netflix_assets import settings
from netflix_assets.stack.services import PostgresService

pytestmark = pytest.mark.stack


def _tcp(user: str, password: str | None = None, dbname: str = settings.POSTGRES_DB) -> dict:
    params = {"host": settings.HOST, "port": settings.ports().postgres, "user": user}
    return {**params, "dbname": dbname, "password": password or "", "connect_timeout": 5}


@pytest.mark.parametrize(
    ("user", "password"),
    [("postgres", None), ("netflix", None), ("netflix", "guess"), ("postgres", "postgres")],
)
def test_postgres_over_tcp_needs_the_password(stack, user, password) -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(**_tcp(user, password)).close()


def test_the_application_role_cannot_run_programs_on_the_server(postgres_resource) -> None:
    with postgres_resource.connect() as conn:
        superuser, createrole = conn.execute(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert (superuser, createrole) == (False, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'id > /tmp/pwned-by-app-role'")
    assert not os.path.exists("/tmp/pwned-by-app-role")


def test_the_dsn_carries_a_generated_password(stack) -> None:
    params = conninfo_to_dict(settings.postgres_dsn())
    assert params["user"] == settings.POSTGRES_USER and len(params.get("password", "")) >= 32
    secret = settings.secrets_dir() / settings.POSTGRES_PASSWORD_SECRET
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.secrets_dir().stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another OS user needs root")
def test_another_os_user_cannot_be_the_superuser_through_the_socket(stack) -> None:
    psql = PostgresService._bin("psql")
    home = PostgresService().home
    port = str(settings.ports().postgres)
    command = ["runuser", "-u", "nobody", "--", psql, "-h", str(home), "-p", port]
    result = subprocess.run(
        [*command, "-U", "postgres", "-d", "postgres", "-w", "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Permission denied" in result.stderr or "authentication failed" in result.stderr


def test_redis_refuses_commands_without_the_password(stack) -> None:
    url = urlsplit(settings.redis_url())
    assert url.password and len(url.password) >= 32
    anonymous = redis.Redis(host=url.hostname, port=url.port, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.get("anything")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=url.hostname, port=url.port, password="guess").ping()
    assert redis.Redis.from_url(settings.redis_url()).ping()


def test_redis_password_is_not_on_the_command_line(stack) -> None:
    url = urlsplit(settings.redis_url())
    pid = int((settings.state_dir() / "redis" / "redis.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    assert url.password not in cmdline
