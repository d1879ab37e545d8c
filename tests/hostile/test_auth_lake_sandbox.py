"""`netflix-assets query` runs the SQL it is given: it may read the lake's tables and nothing
else on the machine, and may write nowhere."""

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
    rows = pa.table({"session_date": ["2026-11-01"], "title_id": ["t1"], "views": [3]})
    write_deltalake(store.table_uri(tables.GOLD_TITLE_DAILY), rows)
    return store


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM '/etc/passwd'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "INSTALL httpfs",
    ],
)
def test_files_outside_the_lake_are_not_readable(lake, tmp_path, sql) -> None:
    # A path used as a table name is not even looked up as a file: "does not exist".
    with pytest.raises(LakeQueryError, match=r"disabled|does not exist") as caught:
        query(sql.format(tmp=tmp_path), root=lake)
    assert "root:" not in str(caught.value)
    assert not (tmp_path / "other.duckdb").exists()


def test_copy_to_writes_nothing(lake, tmp_path) -> None:
    target = tmp_path / "stolen.csv"
    with pytest.raises(LakeQueryError, match="disabled"):
        query(f"COPY (SELECT * FROM gold_title_daily) TO '{target}'", root=lake)
    assert not target.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SET enable_external_access = true; SELECT * FROM read_csv('/etc/passwd')",
        "RESET lock_configuration",
    ],
)
def test_the_lock_cannot_be_undone(lake, sql) -> None:
    with pytest.raises(LakeQueryError):
        query(sql, root=lake)


def test_lake_tables_still_answer(lake) -> None:
    assert query("SELECT sum(views) AS v FROM gold_title_daily", root=lake).to_pylist() == [
        {"v": 3}
    ]


def test_the_cli_refuses_with_a_reason_and_exit_2(lake) -> None:
    cli = str(Path(sys.executable).with_name("netflix-assets"))
    result = subprocess.run(
        [cli, "query", "SELECT * FROM read_csv('/etc/passwd')"],
        env={**os.environ, "NETFLIX_ASSETS_OBJECT_STORE": lake.root},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "disabled" in result.stderr and "root:" not in result.stdout
