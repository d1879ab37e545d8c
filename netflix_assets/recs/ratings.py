"""MovieLens-format ratings files, read into the platform's interaction shape.

Three layouts exist in the wild and are told apart by content, not by name: `u.data`
(tab-separated `user item rating timestamp`, no header), `ratings.dat` (`::`-separated, no
header) and `ratings.csv` (comma-separated with a `userId,movieId,rating,timestamp` header).
The file's ids are kept (as `NS:<id>` with a namespace, so two datasets never collide), and a
bad line is returned with its number and reason instead of stopping the import.

The file is streamed: lines are parsed in chunks into numpy columns, and ids become categorical
codes (one string per distinct user or title, not per row), so ML-25M (25 million lines) costs
about 20 bytes a row instead of the file plus a Python tuple per row.
"""

from __future__ import annotations

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
        number = 0
        while True:
            chunk = list(islice(lines, CHUNK_LINES))
            if not chunk:
                break
            u, t, r, s = [], [], [], []
            for text in chunk:
                number += 1
                text = text.rstrip("\r\n")
                if (header and number == 1) or not text.strip():
                    continue
                parsed = _parse(text, separator)
                if isinstance(parsed, str):
                    bad.add(BadLine(number, parsed, text[:500]))
                    continue
                u.append(users.code(parsed[0]))
                t.append(titles.code(parsed[1]))
                r.append(parsed[2])
                s.append(parsed[3])
            columns["user_id"].append(np.array(u, dtype=np.int32))
            columns["title_id"].append(np.array(t, dtype=np.int32))
            columns["rating"].append(np.array(r, dtype=np.float64))
            columns["ts"].append(np.array(s, dtype=np.int64))
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
