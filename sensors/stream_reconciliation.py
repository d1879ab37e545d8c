"""stream_reconciliation_schedule: compare yesterday's QoE stream output with the lake, daily.

Runs `stream_reconciliation_job` (assets/streaming.py: the `matches_lake_recomputation` checks)
at 02:30 UTC, once yesterday's bronze has landed. Stopped by default: it only means something
where the QoE job runs.
"""

from dagster import DefaultScheduleStatus, ScheduleDefinition

stream_reconciliation_schedule = ScheduleDefinition(
    name="stream_reconciliation_schedule",
    job_name="stream_reconciliation_job",
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Daily, once yesterday's bronze has landed; start it where the QoE job runs.",
)

SCHEDULES = [stream_reconciliation_schedule]
