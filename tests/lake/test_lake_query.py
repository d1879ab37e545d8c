"""`netflix-assets query`: answers from the Delta tables, and SQL it cannot answer fails with
DuckDB's reason and the tables there are, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from netflix_assets.lake_query import LakeQueryError, query
from resources.object_store import ObjectStoreResource
from schema import tables


@pytest.fixture
def lake(tmp_path: Path) -> ObjectStoreResource:
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    rows = pa.table(
        {"session_date": ["2026-11-01", "2026-11-01"], "title_id": ["t1", "t2"], "views": [3, 5]}
    )
    write_deltalake(store.table_uri(tables.GOLD_TITLE_DAILY), rows)
    return store


def test_query_reads_the_delta_table(lake: ObjectStoreResource) -> None:
    result = query("SELECT title_id, views FROM gold_title_daily ORDER BY views DESC", root=lake)
    assert result.to_pylist() == [{"title_id": "t2", "views": 5}, {"title_id": "t1", "views": 3}]


def test_unknown_column_names_the_tables_and_columns(lake: ObjectStoreResource) -> None:
    with pytest.raises(LakeQueryError) as caught:
        query("SELECT event_date FROM gold_title_daily", root=lake)
    message = str(caught.value)
    assert '"event_date" not found' in message
    assert "gold_title_daily(session_date, title_id, views)" in message
    assert "Traceback" not in message


def test_empty_lake_says_so(tmp_path: Path) -> None:
    with pytest.raises(LakeQueryError, match="has no tables yet"):
        query("SELECT * FROM gold_title_daily", root=ObjectStoreResource(root=str(tmp_path)))


def test_cli_exits_2_with_the_reason(lake: ObjectStoreResource) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "netflix_assets.cli", "query", "SELECT nope FROM gold_title_daily"],
        env={**os.environ, "NETFLIX_ASSETS_OBJECT_STORE": lake.root},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: Binder Error")
    assert "gold_title_daily(session_date, title_id, views)" in done.stderr
    assert "Traceback" not in done.stderr
