"""The code location loads, validates and materializes against the real catalog database."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from assets.catalog import catalog_schema
from netflix_assets.definitions import defs
from netflix_assets.settings import REPO_ROOT
from resources.postgres import PostgresResource


def test_dagster_definitions_validate(tmp_path) -> None:
    dagster = [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"]
    result = subprocess.run(
        dagster,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_every_asset_has_a_group() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).group_name != "default", key


def test_video_lineage_runs_through_the_encoding_plan() -> None:
    graph = defs.resolve_asset_graph()
    parents = {
        name: {p.to_user_string() for p in graph.get(AssetKey(name)).parent_keys}
        for name in ("encoding_plan", "renditions")
    }
    assert parents["encoding_plan"] == {"raw_upload"}
    assert parents["renditions"] == {"raw_upload", "encoding_plan"}


@pytest.mark.stack
def test_catalog_schema_materializes(postgres_resource: PostgresResource) -> None:
    result = materialize(
        [catalog_schema],
        resources={"postgres": postgres_resource},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    meta = result.asset_materializations_for_node("catalog_schema")[0].metadata
    assert {
        "catalog.titles",
        "catalog.title_versions",
        "catalog.renditions",
        "catalog.manifests",
        "catalog.quality",
        "product.accounts",
        "product.subscriptions",
        "product.invoices",
        "product.payments",
        "product.viewing_history",
    } <= set(meta["tables"].value)
    again = materialize(
        [catalog_schema],
        resources={"postgres": postgres_resource},
        instance=DagsterInstance.ephemeral(),
    )
    meta = again.asset_materializations_for_node("catalog_schema")[0].metadata
    assert meta["applied_now"].value == []  # re-applying is a no-op
