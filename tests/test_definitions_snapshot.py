"""The code location's graph, as a committed snapshot: a change to it shows in review.

Asset keys with their group, deps, partitions, automation and checks (blocking or not); jobs
with what they select, their partitions and run profile; sensors and schedules with what they
start. The snapshot is sorted JSON in tests/snapshots/definitions.json. When the graph changes on
purpose, regenerate it and commit it with the change:

    NETFLIX_ASSETS_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/test_definitions_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from dagster import Definitions, PartitionsDefinition

from netflix_assets.run_profiles import K8S_CONFIG_TAG, PROFILES, k8s_config

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
UPDATE_VARIABLE = "NETFLIX_ASSETS_UPDATE_SNAPSHOT"
REGENERATE = f"{UPDATE_VARIABLE}=1 .venv/bin/pytest tests/test_definitions_snapshot.py"


def _partitions(partitions_def: PartitionsDefinition | None) -> str | None:
    return str(partitions_def) if partitions_def is not None else None


def _run_profile(tags: dict[str, str]) -> str | None:
    """The run profile whose Kubernetes config the tag carries (GPU variant or not, so the
    snapshot does not depend on NETFLIX_ASSETS_K8S_GPU_NODES)."""
    if K8S_CONFIG_TAG not in tags:
        return None
    config = json.loads(tags[K8S_CONFIG_TAG])
    for profile in sorted(PROFILES):
        for gpu in (False, True):
            try:
                if config == k8s_config(profile, gpu):
                    return profile
            except ValueError:
                continue
    return f"unknown: {tags[K8S_CONFIG_TAG]}"


def _assets(defs: Definitions) -> dict[str, dict[str, Any]]:
    graph = defs.resolve_asset_graph()
    checks: dict[str, list[dict[str, Any]]] = {}
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        checks.setdefault(check_key.asset_key.to_user_string(), []).append(
            {"name": check_key.name, "blocking": spec.blocking}
        )
    assets = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        condition = node.automation_condition
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "execution": node.execution_type.value.lower(),
            "partitions": _partitions(node.partitions_def),
            "automation": condition.get_label() if condition is not None else None,
            "checks": sorted(checks.get(key.to_user_string(), []), key=lambda check: check["name"]),
        }
    return assets


def _jobs(defs: Definitions) -> dict[str, dict[str, Any]]:
    jobs = {}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        layer = job.asset_layer
        tags = dict(job.tags)
        jobs[job.name] = {
            "assets": sorted(key.to_user_string() for key in layer.selected_asset_keys),
            "checks": sorted(
                f"{check.asset_key.to_user_string()}:{check.name}"
                for check in layer.asset_graph.asset_check_keys
            ),
            "partitions": _partitions(job.partitions_def),
            "run_profile": _run_profile(tags),
            "tags": {k: v for k, v in sorted(tags.items()) if k != K8S_CONFIG_TAG},
        }
    return jobs


def _sensors(defs: Definitions) -> dict[str, dict[str, Any]]:
    sensors = {}
    for sensor in defs.get_repository_def().sensor_defs:
        selection = sensor.asset_selection
        sensors[sensor.name] = {
            "type": sensor.sensor_type.value.lower(),
            "jobs": sorted(target.job_name for target in sensor.targets),
            "assets": sorted(
                key.to_user_string() for key in selection.resolve(defs.resolve_asset_graph())
            )
            if selection is not None
            else [],
            "default_status": sensor.default_status.value.lower(),
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
        }
    return sensors


def _schedules(defs: Definitions) -> dict[str, dict[str, Any]]:
    return {
        schedule.name: {
            "job": schedule.job_name,
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "default_status": schedule.default_status.value.lower(),
        }
        for schedule in defs.get_repository_def().schedule_defs
    }


def definitions_snapshot(defs: Definitions) -> dict[str, Any]:
    """The graph as plain, sorted data: what a reviewer should see change."""
    return {
        "assets": _assets(defs),
        "jobs": _jobs(defs),
        "sensors": _sensors(defs),
        "schedules": _schedules(defs),
    }


def render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def test_definitions_match_the_snapshot() -> None:
    from netflix_assets.definitions import defs

    current = render(definitions_snapshot(defs))
    if os.environ.get(UPDATE_VARIABLE) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), f"no snapshot at {SNAPSHOT}; create it with: {REGENERATE}"
    committed = SNAPSHOT.read_text()
    if current != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                current.splitlines(keepends=True),
                fromfile="tests/snapshots/definitions.json (committed)",
                tofile="the code location now",
            )
        )
        pytest.fail(
            f"The Definitions changed against the committed snapshot:\n{diff}\n"
            f"If the change is intended, regenerate and commit the snapshot: {REGENERATE}",
            pytrace=False,
        )


def test_snapshot_names_what_changed() -> None:
    """The comparison fails, with the changed asset in its diff, on a graph that differs."""
    from dagster import asset

    from netflix_assets.definitions import defs

    @asset(group_name="catalog")
    def snapshot_probe() -> None:
        """An asset that exists only in this test."""

    changed = Definitions.merge(defs, Definitions(assets=[snapshot_probe]))
    before, after = definitions_snapshot(defs), definitions_snapshot(changed)
    assert set(after["assets"]) - set(before["assets"]) == {"snapshot_probe"}
    assert after["assets"]["snapshot_probe"]["group"] == "catalog"
    assert render(before) != render(after)
