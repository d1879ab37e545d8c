"""Where local state lives and which loopback ports the local stack uses.

Every default here is for the single-machine stack; production values arrive through
environment variables read by the resources (see docs/ARCHITECTURE.md). Ports sit away from the
usual system ports (6379, 5432, 9092) so a system Redis/PostgreSQL/Kafka never clashes with ours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def state_dir() -> Path:
    """The one ignored folder holding the stack's data, logs, pid files and DAGSTER_HOME."""
    return _env_path("NETFLIX_ASSETS_STATE", REPO_ROOT / ".state")


def cache_dir() -> Path:
    """Download cache (Maven jars) kept outside the clone so a fresh clone reuses it."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "netflix-assets"
    return _env_path("NETFLIX_ASSETS_CACHE", default)


def jar_manifest(group: str) -> Path:
    """The list of a jar group's files (kafka, spark, flink) that the bootstrap resolved."""
    return cache_dir() / "jars" / f"{group}.classpath"


def jars(group: str) -> list[str]:
    """NETFLIX_ASSETS_<GROUP>_JARS (comma-separated paths, as a cluster image sets it), else the
    jars the bootstrap resolved into the cache."""
    if value := os.environ.get(f"NETFLIX_ASSETS_{group.upper()}_JARS"):
        return [j for j in value.split(",") if j]
    try:
        return jar_manifest(group).read_text().split()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no {group} jars: run `make bootstrap` (or `netflix-assets jars`) to resolve them, "
            f"or set NETFLIX_ASSETS_{group.upper()}_JARS"
        ) from None


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the local stack; each can be moved with an environment variable."""

    kafka: int
    kafka_controller: int
    redis: int
    postgres: int


HOST = "127.0.0.1"
POSTGRES_DB = "netflix"
POSTGRES_USER = "netflix"
POSTGRES_PASSWORD_SECRET = "postgres-password"
REDIS_PASSWORD_SECRET = "redis-password"


def secrets_dir() -> Path:
    """Where `stack up` keeps the local services' generated passwords (0700, files 0600)."""
    return state_dir() / "secrets"


def local_secret(name: str) -> str | None:
    """A password the local stack generated, or None before its first `stack up`. Production
    sets the full URLs/DSNs below in the environment instead (docs/SECURITY.md)."""
    try:
        return (secrets_dir() / name).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def ports() -> Ports:
    """Read at call time, so a changed environment variable takes effect without a restart."""
    env = os.environ.get
    return Ports(
        kafka=int(env("NETFLIX_ASSETS_KAFKA_PORT", "19092")),
        kafka_controller=int(env("NETFLIX_ASSETS_KAFKA_CONTROLLER_PORT", "19093")),
        redis=int(env("NETFLIX_ASSETS_REDIS_PORT", "16379")),
        postgres=int(env("NETFLIX_ASSETS_POSTGRES_PORT", "15432")),
    )


def kafka_bootstrap() -> str:
    return os.environ.get("NETFLIX_ASSETS_KAFKA_BOOTSTRAP", f"{HOST}:{ports().kafka}")


def redis_url() -> str:
    """NETFLIX_ASSETS_REDIS_URL, else the local Redis with the stack's generated password."""
    if url := os.environ.get("NETFLIX_ASSETS_REDIS_URL"):
        return url
    password = local_secret(REDIS_PASSWORD_SECRET)
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{HOST}:{ports().redis}/0"


def postgres_dsn() -> str:
    """NETFLIX_ASSETS_POSTGRES_DSN, else the local database as the application role (not a
    superuser) with the stack's generated password."""
    if dsn := os.environ.get("NETFLIX_ASSETS_POSTGRES_DSN"):
        return dsn
    password = local_secret(POSTGRES_PASSWORD_SECRET)
    user = f"{POSTGRES_USER}:{quote(password, safe='')}" if password else POSTGRES_USER
    return f"postgresql://{user}@{HOST}:{ports().postgres}/{POSTGRES_DB}"


def object_store_root() -> str:
    return os.environ.get("NETFLIX_ASSETS_OBJECT_STORE", str(state_dir() / "objects"))


def playback_base_url() -> str | None:
    """Base URL the delivery area is served from (a CDN in production); unset locally."""
    return os.environ.get("NETFLIX_ASSETS_PLAYBACK_BASE_URL") or None
