"""Hostile MovieLens-format ratings files: each must give a clear error or a quarantined line,
never a traceback, never a namespace silently emptied, and never the file held whole in memory."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from deltalake import DeltaTable

from netflix_assets.recs.imports import NoValidRatings, import_ratings
from netflix_assets.recs.ratings import read_ratings
from resources.object_store import ObjectStoreResource


@pytest.mark.parametrize("stamp", ["inf", "-inf", "nan", "1e30", "-5", "99999999999"])
def test_absurd_timestamps_are_bad_lines_not_crashes(tmp_path, stamp) -> None:
    path = tmp_path / "u.data"
    path.write_text(f"1\t2\t3\t881250949\n1\t3\t4\t{stamp}\n")
    frame, bad = read_ratings(path)
    assert len(frame) == 1
    assert [(b.line, b.reason) for b in bad] == [
        (2, f"timestamp {stamp!r} outside 1970..2100 (unix seconds)")
    ]


def test_import_survives_a_timestamp_that_would_overflow_the_lake(tmp_path) -> None:
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    path = tmp_path / "ratings.dat"
    path.write_text("1::10::5::978300760\n1::11::3::1e30\n")
    summary = import_ratings(path, store, namespace="ml")
    assert (summary["rows"], summary["bad_lines"]) == (1, 1)


def test_a_file_of_only_bad_lines_leaves_the_namespace_alone(tmp_path) -> None:
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    good = tmp_path / "good.dat"
    good.write_text("1::10::5::978300760\n2::11::3::978302109\n")
    first = import_ratings(good, store, namespace="ml")
    broken = tmp_path / "broken.dat"
    broken.write_text("1::10::x::978300760\n1::11\n3::12::4::inf\n")
    with pytest.raises(
        NoValidRatings, match=r"no valid rating .*\(3 bad lines.*'ml' left unchanged"
    ):
        import_ratings(broken, store, namespace="ml")
    rows = DeltaTable(first["uri"]).to_pyarrow_table().to_pylist()
    assert sorted(r["user_id"] for r in rows) == ["ml:1", "ml:2"]
    record = json.loads(store.get_bytes("quarantine/ratings/ml.json"))
    assert record["bad_lines_total"] == 3 and record["file"].endswith("broken.dat")


def test_cli_exits_non_zero_on_a_file_of_only_bad_lines(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from netflix_assets.cli import main

    monkeypatch.setenv("NETFLIX_ASSETS_STATE", str(tmp_path / "state"))
    broken = tmp_path / "broken.csv"
    broken.write_text("userId,movieId,rating,timestamp\n1,2,abc,3\n")
    result = CliRunner().invoke(main, ["import-ratings", str(broken), "--namespace", "t17"])
    assert result.exit_code == 2, result.output
    assert "no valid rating" in result.output


def _peak_bytes(path) -> int:
    tracemalloc.start()
    try:
        read_ratings(path, namespace="ml")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reader_streams_memory_grows_by_bytes_per_row_not_the_file(tmp_path) -> None:
    """Peak memory for 3x the lines may grow by the compact columns (about 20 bytes a row),
    not by the file text plus a Python tuple per row (about 300 bytes a row)."""

    def write(name: str, rows: int):
        path = tmp_path / name
        with open(path, "w") as handle:
            for i in range(rows):
                handle.write(f"{i % 5000}::{i % 3000}::{1 + i % 5}::{978300000 + i}\n")
        return path

    small, large = write("small.dat", 60_000), write("large.dat", 180_000)
    growth = _peak_bytes(large) - _peak_bytes(small)
    assert growth < 120_000 * 60, f"peak grew {growth / 120_000:.0f} bytes per extra row"
