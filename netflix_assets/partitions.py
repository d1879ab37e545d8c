"""Partition definitions, declared once and imported by every asset that uses them."""

from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition

title_partitions = DynamicPartitionsDefinition(name="titles")
"""One partition per title id, added by the upload sensor when a studio uploads a title."""

event_date_partitions = DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
"""One partition per event date (UTC); end_offset=1 so today's still-growing date can refresh."""
