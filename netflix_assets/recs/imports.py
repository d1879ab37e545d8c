"""`netflix-assets import-ratings`: a public ratings file into the lake's interaction shape.

Rows land in the Delta table `imported_interactions` (user_id, title_id, ts, weight, source),
the same columns `spark_jobs.features.interactions_from_sessions` gives played sessions, so the
feature, model and evaluation code reads both alike. Each namespace is one `source` value that
an import replaces as a whole (a Delta overwrite with a predicate), so re-importing a file is
idempotent. Lines that cannot be read are kept in `quarantine/ratings/<namespace>.json`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from netflix_assets.clients.object_store import ObjectStoreOps
from netflix_assets.recs.ratings import read_ratings
from schema import tables

SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("title_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("weight", pa.float64()),
        ("source", pa.string()),
    ]
)


class NoValidRatings(ValueError):
    """The file had no line that could be read: the namespace is left as it was."""


BATCH_ROWS = 1_000_000


def _batches(frame, source: str):
    """The frame as Arrow record batches of BATCH_ROWS, so the strings of ML-25M's ids are
    materialized one batch at a time, not for the whole file at once."""
    for start in range(0, len(frame), BATCH_ROWS):
        part = frame.iloc[start : start + BATCH_ROWS]
        yield pa.record_batch(
            [
                pa.array(part["user_id"].astype(str).to_numpy(), pa.string()),
                pa.array(part["title_id"].astype(str).to_numpy(), pa.string()),
                pa.array(part["ts"].to_numpy() * 1_000_000, pa.int64()).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                pa.array(part["rating"].to_numpy() / 5.0, pa.float64()),
                pa.array([source] * len(part), pa.string()),
            ],
            schema=SCHEMA,
        )


def import_ratings(
    path: str | Path, object_store: ObjectStoreOps, namespace: str | None = None
) -> dict[str, Any]:
    """Write the file's ratings as interactions (weight = rating / 5); returns a summary.

    Raises NoValidRatings (after quarantining the bad lines) when not one line could be read:
    replacing a namespace with nothing is never what an import of a broken file means."""
    path = Path(path)
    source = namespace or "ratings"
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", source):
        raise ValueError(f"namespace {source!r} must be 1-64 letters, digits, '_', '.' or '-'")
    frame, bad = read_ratings(path, namespace)
    quarantine = f"quarantine/ratings/{source}.json"
    if bad:
        record = {
            "file": str(path),
            "bad_lines_total": len(bad),
            "bad_lines": [b.__dict__ for b in bad],
        }
        object_store.put_bytes(json.dumps(record, indent=2).encode(), quarantine)
    if frame.empty:
        raise NoValidRatings(
            f"no valid rating in {path} ({len(bad)} bad lines, reasons in {quarantine}); "
            f"namespace {source!r} left unchanged: fix the file and import it again"
        )
    reader = pa.RecordBatchReader.from_batches(SCHEMA, _batches(frame, source))
    uri = object_store.table_uri(tables.IMPORTED_INTERACTIONS)
    exists = Path(uri).exists() if "://" not in uri else True
    if exists and DeltaTable.is_deltatable(uri):
        write_deltalake(uri, reader, mode="overwrite", predicate=f"source = '{source}'")
    else:
        write_deltalake(uri, reader, mode="append", partition_by=["source"])
    return {
        "uri": uri,
        "source": source,
        "rows": len(frame),
        "bad_lines": len(bad),
        "users": int(frame["user_id"].nunique()),
        "titles": int(frame["title_id"].nunique()),
        "version": DeltaTable(uri).version(),
    }
