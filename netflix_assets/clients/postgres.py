"""PostgreSQL: the product database (accounts, billing, catalog, viewing history)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from netflix_assets import settings


class PostgresOps:
    """Connections over `dsn` and `connect_timeout_s`. A connection is a transaction: it commits
    when the `with` block ends cleanly and rolls back on an error, so a failed write leaves
    nothing."""

    dsn: str
    connect_timeout_s: int

    def conninfo(self) -> str:
        """The configured DSN, else settings' (env NETFLIX_ASSETS_POSTGRES_DSN or the local
        stack's database as the application role, password read when connecting)."""
        return self.dsn or settings.postgres_dsn()

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.conninfo(), connect_timeout=self.connect_timeout_s) as conn:
            yield conn


@dataclass(frozen=True)
class PostgresSettings(PostgresOps):
    dsn: str = ""
    connect_timeout_s: int = 10
