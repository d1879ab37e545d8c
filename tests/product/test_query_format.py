"""`netflix-assets query --format` writes CSV and JSON that other tools read back exactly."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from datetime import date
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from netflix_assets.settings import REPO_ROOT


def query(root: Path, fmt: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO_ROOT / ".venv/bin/netflix-assets"), "query", "--format", fmt, sql],
        capture_output=True,
        text=True,
        env={**os.environ, "NETFLIX_ASSETS_OBJECT_STORE": str(root)},
        check=False,
    )


def test_csv_and_json_round_trip(tmp_path: Path) -> None:
    rows = [
        {
            "revenue_date": date(2026, 11, 1),
            "plan_id": "basic",
            "country": "US",
            "mrr_cents": 799,
            "arpu_cents": 799.0,
            "note": 'a "quoted", value',
        },
        {
            "revenue_date": date(2026, 11, 1),
            "plan_id": "premium",
            "country": "GB",
            "mrr_cents": 1899,
            "arpu_cents": None,
            "note": None,
        },
    ]
    write_deltalake(str(tmp_path / "lake" / "gold_revenue_daily"), pa.Table.from_pylist(rows))
    sql = "SELECT * FROM gold_revenue_daily ORDER BY plan_id"
    as_json = query(tmp_path, "json", sql)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {**r, "revenue_date": r["revenue_date"].isoformat()} for r in rows
    ]
    as_csv = query(tmp_path, "csv", sql)
    assert as_csv.returncode == 0, as_csv.stderr
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["note"] for r in parsed] == ['a "quoted", value', ""]
    assert [r["mrr_cents"] for r in parsed] == ["799", "1899"]
    bad = query(tmp_path, "xml", sql)
    assert bad.returncode == 2 and "'xml' is not one of" in bad.stderr
