"""Lineage has no holes: every lake table (schema/tables.py) is an asset of the code location,
written by an asset of its name or declared as an external asset when something outside Dagster
writes it (imported_interactions), so the UI shows where each table comes from."""

from __future__ import annotations

from dagster import AssetKey

from netflix_assets.definitions import defs
from schema import tables


def test_every_lake_table_is_an_asset_of_its_name() -> None:
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    missing = sorted(t.name for t in tables.ALL if t.name not in keys)
    assert not missing, f"lake tables no asset writes or declares: {missing}"


def test_the_models_read_one_training_frame() -> None:
    graph = defs.resolve_asset_graph()
    for model in ("candidate_model", "als_model", "ncf_model", "ranker_model", "model_evaluation"):
        parents = {k.to_user_string() for k in graph.get(AssetKey(model)).parent_keys}
        assert "training_interactions" in parents, f"{model} does not depend on it: {parents}"
