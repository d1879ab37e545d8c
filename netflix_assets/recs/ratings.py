"""MovieLens-format ratings files, read into the platform's interaction shape.

Three layouts exist in the wild and are told apart by content, not by name: `u.data`
(tab-separated `user item rating timestamp`, no header), `ratings.dat` (`::`-separated, no
header) and `ratings.csv` (comma-separated with a `userId,movieId,rating,timestamp` header).
The file's ids are kept (as `NS:<id>` with a namespace, so two datasets never collide), and a
bad line is returned with its number and reason instead of stopping the import.

The file is streamed: lines are parsed in chunks into numpy columns, and ids become categorical
codes (one string per distinct user or title, not per row), so ML-25M (25 million lines) costs
about 24 bytes a row instead of the file plus a Python tuple per row. A chunk of clean lines
(the common case) is parsed by pandas' C reader; a chunk with any line it cannot vouch for is
parsed line by line, so every bad line still gets its number and reason.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ("user_id", "title_id", "rating", "ts")
CHUNK_LINES = 50_000
# Unix seconds from 1970 to 2100: anything else is a corrupt line, and `inf` or 1e30 would
# overflow the microsecond timestamps the lake stores.
MAX_TS = 4_102_444_800
MAX_BAD_KEPT = 10_000  # bad lines kept verbatim; beyond this only counted


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str
    text: str


@dataclass
class BadLines:
    """The first MAX_BAD_KEPT bad lines and how many there were in all (a file of garbage must
    not turn into a quarantine record as large as itself)."""

    kept: list[BadLine]
    total: int = 0

    def add(self, bad: BadLine) -> None:
        self.total += 1
        if len(self.kept) < MAX_BAD_KEPT:
            self.kept.append(bad)

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[BadLine]:
        return iter(self.kept)

    def __getitem__(self, i: int) -> BadLine:
        return self.kept[i]


def detect_format(first_lines: list[str]) -> tuple[str, bool]:
    """(separator, has_header) from the first non-empty lines of a file."""
    sample = next((line for line in first_lines if line.strip()), "")
    if "::" in sample:
        return "::", False
    if "\t" in sample:
        return "\t", False
    if "," in sample:
        header = sample.lower().replace(" ", "")
        return ",", header.startswith("userid,")
    raise ValueError(
        "not a MovieLens ratings file: expected tab-, '::'- or comma-separated "
        f"user/item/rating/timestamp lines, got {sample[:60]!r}"
    )


def _parse(text: str, separator: str) -> tuple[str, str, float, int] | str:
    """The line's (user, item, rating, ts), or the reason it cannot be read."""
    parts = [p.strip() for p in text.split(separator)]
    if len(parts) < 4:
        return f"expected 4 fields, found {len(parts)}"
    user, item, rating, ts = parts[:4]
    if not user or not item:
        return "empty user or item id"
    try:
        value, stamp = float(rating), float(ts)
    except ValueError:
        return f"rating {rating!r} or timestamp {ts!r} is not a number"
    if not 0 <= value <= 10:  # also NaN
        return f"rating {value} outside 0..10"
    if not (math.isfinite(stamp) and 0 <= stamp < MAX_TS):
        return f"timestamp {ts!r} outside 1970..2100 (unix seconds)"
    return user, item, value, int(stamp)


class _Codes:
    """Distinct ids in first-seen order, each row stored as an int32 code."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index: dict[str, int] = {}

    def code(self, raw: str) -> int:
        found = self.index.get(raw)
        if found is None:
            found = self.index[raw] = len(self.index)
        return found

    def categorical(self, codes: np.ndarray) -> pd.Categorical:
        categories = [self.prefix + raw for raw in self.index]
        return pd.Categorical.from_codes(codes, categories=categories)


Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""user codes (int32), title codes (int32), ratings (float64), Unix seconds (int64)."""


def _fast_chunk(lines: list[str], separator: str, users: _Codes, titles: _Codes) -> Columns | None:
    """The chunk's columns read by pandas' C parser when every line is a valid rating with
    nothing the line-by-line path would read differently; None otherwise (a blank line, a
    bad number or field count, surrounding whitespace in an id, a '\\r'), and the caller then
    parses the chunk line by line. Ids are coded in first-seen order, as that path does."""
    text = "".join(lines).replace("\r\n", "\n")
    if not text or "\r" in text or "\n\n" in text or text.startswith("\n"):
        return None
    if separator == "::":
        if "\x1f" in text:
            return None
        text, separator = text.replace("::", "\x1f"), "\x1f"
    if text.count(separator) != 3 * len(lines):  # a line with other than four fields
        return None
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=separator,
            header=None,
            names=COLUMNS,
            index_col=False,
            dtype={"user_id": str, "title_id": str, "rating": np.float64, "ts": np.float64},
            quoting=csv.QUOTE_NONE,
            na_filter=False,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    if len(frame) != len(lines):
        return None
    rating, stamp = frame["rating"].to_numpy(), frame["ts"].to_numpy()
    valid = (rating >= 0) & (rating <= 10) & np.isfinite(stamp) & (stamp >= 0) & (stamp < MAX_TS)
    if not valid.all():
        return None
    # Both id columns are checked before either is coded: a chunk that falls back must not
    # have coded ids the line-by-line path would skip.
    factors = [pd.factorize(frame[name].to_numpy()) for name in ("user_id", "title_id")]
    if any((local < 0).any() for local, _ in factors) or any(
        not raw or raw != raw.strip() for _, uniques in factors for raw in uniques
    ):
        return None
    coded = [
        np.fromiter((codes.code(raw) for raw in uniques), np.int32, len(uniques))[local]
        for codes, (local, uniques) in zip((users, titles), factors, strict=True)
    ]
    return coded[0], coded[1], rating, stamp.astype(np.int64)


def _slow_chunk(
    lines: list[str], first: int, separator: str, users: _Codes, titles: _Codes, bad: BadLines
) -> Columns:
    """The chunk line by line (`first` is the number of its first line): every bad line kept
    with its number and reason."""
    u, t, r, s = [], [], [], []
    for number, text in enumerate(lines, start=first):
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        parsed = _parse(text, separator)
        if isinstance(parsed, str):
            bad.add(BadLine(number, parsed, text[:500]))
            continue
        u.append(users.code(parsed[0]))
        t.append(titles.code(parsed[1]))
        r.append(parsed[2])
        s.append(parsed[3])
    return (
        np.array(u, dtype=np.int32),
        np.array(t, dtype=np.int32),
        np.array(r, dtype=np.float64),
        np.array(s, dtype=np.int64),
    )


def read_ratings(path: str | Path, namespace: str | None = None) -> tuple[pd.DataFrame, BadLines]:
    """Rows (user_id, title_id as categoricals, rating, ts in unix seconds) and the lines that
    could not be read."""
    path = Path(path)
    prefix = f"{namespace}:" if namespace else ""
    users, titles = _Codes(prefix), _Codes(prefix)
    columns: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
    bad = BadLines([])
    with open(path, encoding="utf-8", errors="replace") as handle:
        head = list(islice(handle, 5))
        separator, header = detect_format(head)
        lines = chain(head, handle)
        number = 1  # the number of the chunk's first line
        while True:
            chunk = list(islice(lines, CHUNK_LINES))
            if not chunk:
                break
            first = number
            if header and number == 1:
                chunk, first = chunk[1:], 2
            number = first + len(chunk)
            parsed = _fast_chunk(chunk, separator, users, titles) if chunk else None
            if parsed is None:
                parsed = _slow_chunk(chunk, first, separator, users, titles, bad)
            for name, values in zip(COLUMNS, parsed, strict=True):
                columns[name].append(values)
    # Each column is joined and its chunks dropped before the next, so the peak is one
    # column's extra copy, not the whole table's.
    joined: dict[str, np.ndarray] = {}
    for name, dtype in (
        ("user_id", np.int32),
        ("title_id", np.int32),
        ("rating", np.float64),
        ("ts", np.int64),
    ):
        parts = columns.pop(name)
        joined[name] = np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
        del parts
    frame = pd.DataFrame(
        {
            "user_id": users.categorical(joined.pop("user_id")),
            "title_id": titles.categorical(joined.pop("title_id")),
            "rating": joined.pop("rating"),
            "ts": joined.pop("ts"),
        },
        copy=False,
    )
    return frame, bad
