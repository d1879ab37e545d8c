"""Kafka offsets a reader kept versus what the topic still holds: lost data is an error.

Readers here keep their own offsets (bronze derives them from its table, the upload sensor from
its cursor). When the topic no longer holds the next offset a reader needs (retention or
delete-records removed it), or holds fewer offsets than the reader already read (the topic was
deleted and re-created, its offsets restarted), starting at the log start would skip the lost
messages or take new ones for ones already read, silently. `check_offsets` says so instead,
naming topic, partition and the offset range.

Offsets alone miss a topic re-created and refilled to at least as many offsets as were read: a
reader that keeps the topic's id (Kafka gives every topic a new one when it is created) beside
its offsets passes both ids, and a different id makes every partition it read a gap.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OffsetGap:
    """One partition whose kept offset the topic cannot honour."""

    partition: int
    kept_next: int
    low: int | None
    high: int | None
    replaced: bool = False
    """The topic's id differs from the one the reader kept: a different topic of that name."""

    @property
    def recreated(self) -> bool:
        """The topic holds fewer offsets than were read (or lost the partition), or is another
        topic by id: re-created."""
        return self.replaced or self.high is None or self.kept_next > self.high

    @property
    def missing_range(self) -> tuple[int, int | None]:
        """[start, end) of the offsets the reader would lose or mistake: for a retention gap
        the deleted offsets; for a re-created topic the new topic's offsets that would be taken
        for ones already read (end None: the partition is gone)."""
        if self.recreated:
            return (self.low or 0, None if self.high is None else min(self.high, self.kept_next))
        return (self.kept_next, self.low or 0)

    def describe(self, topic: str) -> str:
        where = f"{topic}[{self.partition}]"
        if self.replaced:
            start, end = self.missing_range
            skipped = (
                ""
                if end is None or end <= start
                else f"; the new topic's offsets [{start}, {end}) would be skipped as read"
            )
            return (
                f"{where}: the topic id changed: the topic was deleted and re-created after "
                f"offsets up to {self.kept_next - 1} of the old one were read{skipped}"
            )
        if self.high is None:
            return (
                f"{where}: the partition no longer exists but offsets up to "
                f"{self.kept_next - 1} were read from it (the topic was re-created with fewer "
                "partitions)"
            )
        if self.recreated:
            return (
                f"{where}: the topic ends at offset {self.high} but offsets up to "
                f"{self.kept_next - 1} were already read (the topic was deleted and re-created; "
                f"its messages at [{self.low}, {self.high}) would be taken for ones already read)"
            )
        return (
            f"{where}: offsets [{self.kept_next}, {self.low}) were deleted (retention or "
            "delete-records) before they were read; those messages are lost"
        )


class OffsetsLost(RuntimeError):
    """Messages a reader needed are gone from Kafka; the message names every range."""

    def __init__(
        self,
        topic: str,
        reader: str,
        gaps: list[OffsetGap],
        fix: str,
        topic_ids: tuple[str, str] | None = None,
    ) -> None:
        self.topic, self.reader, self.gaps, self.topic_ids = topic, reader, gaps, topic_ids
        lines = "; ".join(g.describe(topic) for g in gaps)
        ids = f" (topic id {topic_ids[0]} read, {topic_ids[1]} now)" if topic_ids else ""
        super().__init__(f"{reader} cannot continue on topic {topic!r}{ids}: {lines}. {fix}")


def offset_gaps(
    kept: dict[int, int],
    watermarks: dict[int, tuple[int, int]],
    kept_topic_id: str | None = None,
    topic_id: str | None = None,
) -> list[OffsetGap]:
    """Every partition where `kept` (partition -> next offset to read) cannot continue.

    A partition the reader never read counts only once it has read others: a reader starting
    on a topic begins at the log start by design, one already reading it must not skip. When
    both topic ids are known and differ, every partition read is a gap: its offsets belong to a
    topic that no longer exists."""
    if kept and kept_topic_id and topic_id and kept_topic_id != topic_id:
        return [
            OffsetGap(p, n, *watermarks.get(p, (None, None)), replaced=True)
            for p, n in sorted(kept.items())
        ]
    gaps = []
    for partition, next_offset in sorted(kept.items()):
        if partition not in watermarks:
            gaps.append(OffsetGap(partition, next_offset, None, None))
            continue
        low, high = watermarks[partition]
        if next_offset < low or next_offset > high:
            gaps.append(OffsetGap(partition, next_offset, low, high))
    if kept:
        for partition, (low, high) in sorted(watermarks.items()):
            if partition not in kept and low > 0:
                gaps.append(OffsetGap(partition, 0, low, high))
    return gaps


def check_offsets(
    topic: str, reader: str, kept: dict[int, int], watermarks: dict[int, tuple[int, int]], fix: str
) -> None:
    """Raise OffsetsLost when any partition's kept offset cannot be continued from."""
    gaps = offset_gaps(kept, watermarks)
    if gaps:
        raise OffsetsLost(topic, reader, gaps, fix)
