"""How `netflix-assets query` prints a result: a table for people, CSV or JSON for pipes."""

from __future__ import annotations

import io
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.csv

FORMATS = ("table", "csv", "json")


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_csv(table: pa.Table) -> str:
    """RFC 4180 CSV with a header row; nulls are empty fields."""
    sink = io.BytesIO()
    pyarrow.csv.write_csv(table, sink, pyarrow.csv.WriteOptions(quoting_style="needed"))
    return sink.getvalue().decode()


def to_json(table: pa.Table) -> str:
    """One JSON array of row objects (dates ISO 8601, decimals as numbers), for jq and friends."""
    return orjson.dumps(
        table.to_pylist(), default=_json_default, option=orjson.OPT_NAIVE_UTC
    ).decode()


def to_rich(table: pa.Table):
    from rich.table import Table

    view = Table(*table.column_names)
    for row in table.to_pylist():
        view.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    return view
