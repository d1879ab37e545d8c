"""Versioned SQL migrations: plain reviewed files `schema/migrations/NNNN_name.sql`, applied in
order, each in its own transaction, recorded with a checksum in `public.schema_migrations`.

A migration that was applied and then edited is refused (the database no longer matches the
file: write a new migration instead); a re-run with nothing pending changes nothing. Two runners
at once (the catalog_schema asset and a publishing title) serialise on an advisory lock.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from schema import MIGRATIONS_DIR

NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 7_015_001
"""pg_advisory_lock key of the runner (any constant no other code uses)."""

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version      integer PRIMARY KEY,
    name         text NOT NULL,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    duration_ms  integer NOT NULL
)
"""


class MigrationError(RuntimeError):
    """The migrations cannot run as asked; the message names the file and the fix."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class MigrationState:
    version: int
    name: str
    state: str
    """applied, pending, edited (applied, file changed since) or missing (applied, no file)."""
    applied_at: datetime | None


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in version order; a badly named file or a repeated version stops
    here, before anything touches the database."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{path} is not named NNNN_name.sql (four digits, lower-case name); rename it"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name} and {found[version].filename} share version {version}; renumber one"
            )
        found[version] = Migration(version, match.group(2), path, path.read_text())
    return [found[v] for v in sorted(found)]


def _applied(conn: psycopg.Connection) -> dict[int, tuple[str, str, datetime]]:
    exists = conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0]
    if exists is None:
        return {}
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM public.schema_migrations")
    return {version: (name, checksum, at) for version, name, checksum, at in rows}


def status(dsn: str, migrations: list[Migration] | None = None) -> list[MigrationState]:
    """Applied and pending versions (and any applied file since edited or removed)."""
    migrations = discover() if migrations is None else migrations
    with psycopg.connect(dsn, autocommit=True) as conn:
        applied = _applied(conn)
    states = []
    files = {m.version: m for m in migrations}
    for version in sorted(set(files) | set(applied)):
        migration, record = files.get(version), applied.get(version)
        if record is None:
            states.append(MigrationState(version, migration.name, "pending", None))
        elif migration is None:
            states.append(MigrationState(version, record[0], "missing", record[2]))
        else:
            state = "applied" if record[1] == migration.checksum else "edited"
            states.append(MigrationState(version, migration.name, state, record[2]))
    return states


def _refuse_drift(migrations: list[Migration], applied: dict) -> None:
    files = {m.version: m for m in migrations}
    for version, (name, checksum, _) in sorted(applied.items()):
        migration = files.get(version)
        if migration is None:
            raise MigrationError(
                f"migration {version:04d}_{name}.sql is applied to the database but missing from "
                f"{MIGRATIONS_DIR}; restore the file (applied migrations are never deleted)"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.filename} was edited after it was applied (checksum "
                f"{checksum[:12]} in the database, {migration.checksum[:12]} on disk); revert the "
                "edit and put the change in a new migration"
            )


def migrate(dsn: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply the pending migrations in order, each in one transaction with its record; returns
    the file names applied now (empty when the database is up to date)."""
    migrations = discover() if migrations is None else migrations
    done: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(CREATE_TABLE)
            applied = _applied(conn)
            _refuse_drift(migrations, applied)
            for migration in migrations:
                if migration.version in applied:
                    continue
                started = time.perf_counter()
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)
                        conn.execute(
                            "INSERT INTO public.schema_migrations "
                            "(version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)",
                            (
                                migration.version,
                                migration.name,
                                migration.checksum,
                                int((time.perf_counter() - started) * 1000),
                            ),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"{migration.filename} failed and was rolled back (nothing of it is "
                        f"applied): {exc.diag.message_primary or exc}"
                    ) from exc
                done.append(migration.filename)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return done
