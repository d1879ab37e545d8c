"""Arrow columns as a PostgreSQL binary COPY stream, built by Arrow's compute kernels: no Python
object per row or per value. Each field becomes a binary array of its wire form (an int32
length, then the big-endian value; -1 for NULL), the fields of a row are joined by
`binary_join_element_wise`, and the joined array's data buffer is already the COPY rows.

Binary COPY spares the server the text parsing of timestamps, dates and numbers too: at 2
cores that parsing was as dear as the formatting (docs/PRODUCT.md, "Speed")."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
PG_EPOCH_DAYS = 10_957  # 2000-01-01, PostgreSQL's epoch, in days after 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400 * 1_000_000

PG_TYPES = ("text", "date", "timestamptz", "bigint", "boolean")


class CopyEncodeError(ValueError):
    """A column that cannot be sent as the PostgreSQL type it is declared as."""


@dataclass(frozen=True)
class Field:
    """A COPY column: its name in the Arrow table and the PostgreSQL type of the target."""

    name: str
    pg_type: str

    def __post_init__(self) -> None:
        if self.pg_type not in PG_TYPES:
            raise CopyEncodeError(
                f"column {self.name!r}: no binary encoder for PostgreSQL type {self.pg_type!r} "
                f"(known: {', '.join(PG_TYPES)})"
            )


def _fixed(values: np.ndarray, width: int) -> pa.Array:
    """int32 length `width` then each value's `width` big-endian bytes, as one binary array."""
    rows = np.empty((len(values), 4 + width), dtype=np.uint8)
    rows[:, :4] = np.frombuffer(np.array(width, dtype=">i4").tobytes(), dtype=np.uint8)
    rows[:, 4:] = (
        values.astype(f">{values.dtype.kind}{width}", copy=False)
        .view(np.uint8)
        .reshape(len(values), width)
    )
    wire = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(4 + width), len(values), [None, pa.py_buffer(rows)]
    )
    return wire.cast(pa.binary())


def _numbers(column: pa.Array, field: Field) -> np.ndarray:
    """The column's values as the integers PostgreSQL's binary form carries (nulls as 0; their
    wire form is replaced by NULL afterwards)."""
    kind = column.type
    if field.pg_type == "date":
        if not pa.types.is_date32(kind):
            raise CopyEncodeError(f"column {field.name!r}: date wants an Arrow date32, got {kind}")
        days = column.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
        return days - np.int32(PG_EPOCH_DAYS)
    if field.pg_type == "timestamptz":
        if not pa.types.is_timestamp(kind):
            raise CopyEncodeError(
                f"column {field.name!r}: timestamptz wants an Arrow timestamp, got {kind}"
            )
        # a timestamp without a zone is taken as UTC, as Spark (session zone UTC) writes them
        try:
            micros = column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64())
        except pa.ArrowInvalid as exc:
            raise CopyEncodeError(
                f"column {field.name!r}: timestamps finer than PostgreSQL's microseconds ({exc})"
            ) from exc
        return micros.fill_null(0).to_numpy(zero_copy_only=False) - np.int64(PG_EPOCH_US)
    if field.pg_type == "bigint":
        if not pa.types.is_integer(kind):
            raise CopyEncodeError(
                f"column {field.name!r}: bigint wants an Arrow integer, got {kind}"
            )
        return column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    if not pa.types.is_boolean(kind):
        raise CopyEncodeError(f"column {field.name!r}: boolean wants an Arrow bool, got {kind}")
    return column.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)


WIDTHS = {"date": 4, "timestamptz": 8, "bigint": 8, "boolean": 1}


def _wire(column: pa.Array, field: Field) -> pa.Array:
    if pa.types.is_null(column.type):  # a column Arrow inferred from nothing but NULLs
        return pa.array([NULL] * len(column), pa.binary())
    if field.pg_type == "text":
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise CopyEncodeError(
                f"column {field.name!r}: text wants an Arrow string, got {column.type}"
            )
        data = column.cast(pa.binary())
        lengths = pc.binary_length(data).fill_null(0).to_numpy(zero_copy_only=False)
        prefix = _prefix(lengths.astype(np.int32))
        wire = pc.binary_join_element_wise(prefix, data, b"")
    else:
        wire = _fixed(_numbers(column, field), WIDTHS[field.pg_type])
    if column.null_count:
        wire = pc.if_else(column.is_valid(), wire, pa.scalar(NULL, pa.binary()))
    return wire


def _prefix(lengths: np.ndarray) -> pa.Array:
    be = lengths.astype(">i4")
    wire = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(be), [None, pa.py_buffer(be)])
    return wire.cast(pa.binary())


def encode(batch: pa.RecordBatch | pa.Table, fields: Sequence[Field]) -> memoryview:
    """The COPY rows of `batch` (no signature, no trailer) for the columns `fields`."""
    names = set(batch.schema.names)
    missing = [f.name for f in fields if f.name not in names]
    if missing:
        raise CopyEncodeError(f"columns missing for COPY: {', '.join(missing)}")
    if batch.num_rows == 0:
        return memoryview(b"")
    count = pa.scalar(len(fields).to_bytes(2, "big"), pa.binary())
    parts = []
    for field in fields:
        column = batch.column(field.name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        parts.append(_wire(column, field))
    rows = pc.binary_join_element_wise(count, *parts, b"")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=0)
    first, last = int(offsets[rows.offset]), int(offsets[rows.offset + len(rows)])
    return memoryview(rows.buffers()[2].slice(first, last - first))


def stream(
    table: pa.Table, fields: Sequence[Field], batch_rows: int = 65_536
) -> Iterator[bytes | memoryview]:
    """The whole binary COPY stream: signature, the rows in blocks of `batch_rows`, trailer."""
    yield SIGNATURE
    for batch in table.to_batches(max_chunksize=batch_rows):
        block = encode(batch, fields)
        if block:
            yield block
    yield TRAILER
