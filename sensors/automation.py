"""lake_automation_sensor: evaluates the lake's AutomationConditions, on from the start.

Dagster's implicit default automation sensor starts stopped, which would leave silver and gold
waiting for someone to switch it on; this one is declared RUNNING so the chain refreshes by itself
as soon as bronze lands new events.
"""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

lake_automation_sensor = AutomationConditionSensorDefinition(
    "lake_automation_sensor",
    target=AssetSelection.groups("lake"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Materializes silver and gold partitions whose upstream data changed.",
)

SENSORS = [lake_automation_sensor]
