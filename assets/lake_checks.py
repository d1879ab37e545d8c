"""The bronze ingest's offsets check: lost Kafka offsets fail a blocking asset check on
bronze_viewing_events, naming topic, partition and range, besides failing the run.

The check is evaluated by the bronze asset itself (it is the step that compares bronze's offsets
and topic id with Kafka's), so it is declared here and attached with `check_specs`:

- offsets deleted before bronze read them (retention, delete-records), or a re-created topic
  (fewer offsets than bronze read, or another topic id): failed, severity ERROR, so nothing
  downstream runs on a bronze that silently skipped data; the run fails too;
- a retention loss acknowledged with `accept_lost_offsets`: the run continues from the log start
  and the check records the acknowledged ranges as a WARN failure (visible, not blocking);
- otherwise passed, with the topic id bronze read.
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from netflix_assets.offsets import OffsetGap, OffsetsLost

OFFSETS_INTACT = AssetCheckSpec(
    "kafka_offsets_intact",
    asset="bronze_viewing_events",
    blocking=True,
    description="Bronze continues from every Kafka offset it needs, on the topic it read (same "
    "topic id): deleted or re-created ranges fail, naming topic, partition and range.",
)


def _ranges(gaps: list[OffsetGap]) -> list[dict[str, object]]:
    return [
        {
            "partition": g.partition,
            "range": list(g.missing_range),
            "cause": "re-created topic" if g.recreated else "deleted before read",
        }
        for g in gaps
    ]


def lost_offsets_result(exc: OffsetsLost) -> AssetCheckResult:
    """The failed check for a loss bronze refused to continue past."""
    metadata: dict[str, object] = {
        "topic": exc.topic,
        "lost_ranges": MetadataValue.json(_ranges(exc.gaps)),
    }
    if exc.topic_ids:
        metadata["topic_id_read"], metadata["topic_id_now"] = exc.topic_ids
    return AssetCheckResult(
        check_name=OFFSETS_INTACT.name,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=str(exc),
        metadata=metadata,
    )


def offsets_result(
    topic: str, acknowledged: dict[int, tuple[int, int | None]], topic_id: str | None
) -> AssetCheckResult:
    """The check after an ingest: passed, or the acknowledged loss (partition -> [start, end)
    deleted before bronze read it) as a warning."""
    metadata: dict[str, object] = {"topic": topic, "topic_id": topic_id or ""}
    if not acknowledged:
        return AssetCheckResult(check_name=OFFSETS_INTACT.name, passed=True, metadata=metadata)
    ranges = "; ".join(f"{topic}[{p}]: [{s}, {e})" for p, (s, e) in sorted(acknowledged.items()))
    return AssetCheckResult(
        check_name=OFFSETS_INTACT.name,
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description=f"acknowledged with accept_lost_offsets, deleted before bronze read them: "
        f"{ranges}",
        metadata={
            **metadata,
            "acknowledged_lost_ranges": MetadataValue.json(
                {str(p): list(r) for p, r in acknowledged.items()}
            ),
        },
    )
