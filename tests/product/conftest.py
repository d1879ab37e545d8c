"""A scratch database per test session on the stack's PostgreSQL, migrated from empty, so the
product tests never touch the `netflix` database the rest of the platform uses."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from netflix_assets.product import migrations
from resources.postgres import PostgresResource


def scratch_database(postgres_resource: PostgresResource) -> Iterator[str]:
    name = f"product_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(postgres_resource.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(postgres_resource.conninfo())
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(postgres_resource.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def empty_dsn(postgres_resource: PostgresResource) -> Iterator[str]:
    """A database with nothing in it (the application role owns it)."""
    yield from scratch_database(postgres_resource)


@pytest.fixture(scope="session")
def product_dsn(postgres_resource: PostgresResource) -> Iterator[str]:
    """A database migrated to the latest version."""
    for dsn in scratch_database(postgres_resource):
        migrations.migrate(dsn)
        yield dsn


@pytest.fixture(scope="session")
def product_db(product_dsn: str) -> PostgresResource:
    return PostgresResource(dsn=product_dsn)


@pytest.fixture
def fresh_dsn(postgres_resource: PostgresResource) -> Iterator[str]:
    """A database with nothing in it, for one test."""
    yield from scratch_database(postgres_resource)
