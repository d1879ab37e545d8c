"""viewing_history_partitions_daily: keep PostgreSQL's viewing-history months created ahead.

Runs `viewing_history_partitions_job` (assets/product.py) every day at 03:00 UTC, so the month
partitions exist before the daily COPY into product.viewing_history needs them.
"""

from dagster import ScheduleDefinition

viewing_history_partitions_daily = ScheduleDefinition(
    name="viewing_history_partitions_daily",
    job_name="viewing_history_partitions_job",
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
)

SCHEDULES = [viewing_history_partitions_daily]
