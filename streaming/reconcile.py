"""Reconciling the QoE stream's published windows with their batch recomputation (pure Python).

The stream publishes each window once and forgets it; the lake keeps every event. Comparing the
two, window by window, is how an operator proves a restart, a broker outage or a deploy lost or
doubled nothing. A window the stream has not closed yet (its end is after the last window end
the stream published) is counted as open, not as missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DIMENSIONS = {
    "qoe_window": ("title_id", "device", "cdn", "country"),
    "concurrent_viewers": ("title_id",),
}
"""Per record kind, the fields that with window_start identify a window."""


@dataclass(frozen=True)
class Mismatch:
    key: tuple[str, ...]
    field: str
    stream: Any
    batch: Any


@dataclass
class Reconciliation:
    """Windows of one kind: compared (closed in both or missing from one), and how they differ."""

    kind: str
    matched: int = 0
    open_windows: int = 0
    missing_in_stream: list[tuple[str, ...]] = field(default_factory=list)
    extra_in_stream: list[tuple[str, ...]] = field(default_factory=list)
    differing: list[Mismatch] = field(default_factory=list)
    republished: list[tuple[str, ...]] = field(default_factory=list)
    """Windows the stream published more than once with different values (a replay after a
    restore that lost the watermark can emit a partial second result); identical copies from
    at-least-once replays are harmless and not listed."""

    @property
    def ok(self) -> bool:
        return not (
            self.missing_in_stream or self.extra_in_stream or self.differing or self.republished
        )

    @property
    def compared(self) -> int:
        differing_windows = len({m.key for m in self.differing})
        return (
            self.matched
            + differing_windows
            + len(self.missing_in_stream)
            + len(self.extra_in_stream)
        )


def window_key(kind: str, record: dict[str, Any]) -> tuple[str, ...]:
    return (*(str(record[d]) for d in DIMENSIONS[kind]), str(record["window_start"]))


def _same(a: Any, b: Any, rel_tol: float) -> bool:
    """Equal, with floats to rounding (JSON and Spark round a percentile differently)."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
    return a == b


def reconcile(
    kind: str,
    stream: Iterable[dict[str, Any]],
    batch: Iterable[dict[str, Any]],
    closed_until: str | None = None,
    rel_tol: float = 1e-9,
) -> Reconciliation:
    """Compares the stream's records of `kind` with the batch's (same field names); a field the
    batch lacks is not compared, so `kind` and other stream-only fields need no twin.

    Batch windows ending after `closed_until` are open. Its default is the last window end the
    stream published; when it published none, every batch window counts as missing rather than
    open (a stream that lost everything must not pass)."""
    result = Reconciliation(kind)
    published: dict[tuple[str, ...], dict[str, Any]] = {}
    for record in stream:
        if record.get("kind", kind) != kind:
            continue
        key = window_key(kind, record)
        if key in published and published[key] != record and key not in result.republished:
            result.republished.append(key)
        published[key] = record
    batch = list(batch)
    if closed_until is None:
        source = published.values() if published else batch
        closed_until = max((str(r["window_end"]) for r in source), default="")
    recomputed = {}
    for record in batch:
        if str(record["window_end"]) > closed_until:
            result.open_windows += 1
        else:
            recomputed[window_key(kind, record)] = record
    for key in sorted(published.keys() - recomputed.keys()):
        result.extra_in_stream.append(key)
    for key in sorted(recomputed.keys() - published.keys()):
        result.missing_in_stream.append(key)
    for key in sorted(published.keys() & recomputed.keys()):
        mine, theirs = published[key], recomputed[key]
        diffs = [
            Mismatch(key, name, mine.get(name), value)
            for name, value in theirs.items()
            if not _same(mine.get(name), value, rel_tol)
        ]
        result.differing += diffs
        result.matched += not diffs
    return result


def late_reports(stream: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(event_id, watermark_ts) of every late_event record: the batch leaves each such copy out
    of the windows that had fired when it came."""
    return [
        (str(r["event_id"]), str(r["watermark_ts"]))
        for r in stream
        if r.get("kind") == "late_event" and r.get("event_id") and r.get("watermark_ts")
    ]
