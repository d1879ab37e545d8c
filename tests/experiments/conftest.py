"""A scratch PostgreSQL database per test module, migrated from empty, so experiment tests never
write into the `netflix` database the service and the other tests read, and the experiments one
module defines are not running in another's service."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from netflix_assets.product import migrations
from resources.postgres import PostgresResource


@pytest.fixture(scope="module")
def experiments_db(postgres_resource: PostgresResource) -> Iterator[PostgresResource]:
    name = f"experiments_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(postgres_resource.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(**{**conninfo_to_dict(postgres_resource.conninfo()), "dbname": name})
    try:
        migrations.migrate(dsn)
        yield PostgresResource(dsn=dsn)
    finally:
        with psycopg.connect(postgres_resource.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
