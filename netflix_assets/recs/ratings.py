"""MovieLens-format ratings files, read into the platform's interaction shape.

Three layouts exist in the wild and are told apart by content, not by name: `u.data`
(tab-separated `user item rating timestamp`, no header), `ratings.dat` (`::`-separated, no
header) and `ratings.csv` (comma-separated with a `userId,movieId,rating,timestamp` header).
The file's ids are kept (as `NS:<id>` with a namespace, so two datasets never collide), and a
bad line is returned with its number and reason instead of stopping the import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

COLUMNS = ("user_id", "title_id", "rating", "ts")


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str
    text: str


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


def read_ratings(
    path: str | Path, namespace: str | None = None
) -> tuple[pd.DataFrame, list[BadLine]]:
    """Rows (user_id, title_id, rating, ts in unix seconds) and the lines that could not be read."""
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    separator, header = detect_format(lines[:5])
    rows: list[tuple[str, str, float, int]] = []
    bad: list[BadLine] = []
    prefix = f"{namespace}:" if namespace else ""
    for number, text in enumerate(lines, start=1):
        if (header and number == 1) or not text.strip():
            continue
        parts = [p.strip() for p in text.split(separator)]
        if len(parts) < 4:
            bad.append(BadLine(number, f"expected 4 fields, found {len(parts)}", text))
            continue
        user, item, rating, ts = parts[:4]
        if not user or not item:
            bad.append(BadLine(number, "empty user or item id", text))
            continue
        try:
            value = float(rating)
            stamp = int(float(ts))
        except ValueError:
            bad.append(
                BadLine(number, f"rating {rating!r} or timestamp {ts!r} is not a number", text)
            )
            continue
        if not 0 <= value <= 10:
            bad.append(BadLine(number, f"rating {value} outside 0..10", text))
            continue
        rows.append((prefix + user, prefix + item, value, stamp))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"rating": "float64", "ts": "int64"}), bad
