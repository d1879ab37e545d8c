"""Where the serving process learns of new releases when Dagster runs beside it: the
`recommender_release` materializations of the instance. The top layer joins the two, so the
serving package itself imports no Dagster."""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance

from netflix_assets.serving.bundle import Manifest, Source


def instance_source(instance: DagsterInstance) -> Source:
    """Releases recorded in a Dagster instance: the newest partition of `recommender_release`
    (a backfill of an older date never replaces a newer model), newest run first."""
    key = AssetKey("recommender_release")

    def newest() -> tuple[str, Manifest] | None:
        records = instance.fetch_materializations(key, limit=200).records
        if not records:
            return None
        best = max(
            records,
            key=lambda r: (r.asset_materialization.partition or "", r.storage_id),
        )
        meta = best.asset_materialization.metadata
        manifest = {k: str(v.value) for k, v in meta.items() if not k.endswith("_uri")}
        return f"{manifest.get('as_of', '')}#{best.storage_id}", manifest

    return newest
