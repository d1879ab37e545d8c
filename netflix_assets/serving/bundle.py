"""A loaded release: the models one `recommender_release` names, ready to answer requests.

A bundle is immutable once built. The store swaps a whole bundle for a newer one, so a request
that picked a bundle up finishes with the same models it started with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np

from netflix_assets.recs.training import AlsModel
from netflix_assets.recs.two_stage import TitleTable
from resources.object_store import ObjectStoreResource

Manifest = dict[str, str]
"""{"as_of", "als_key", "ranker_key", "titles_key", "online_prefix", optional "version"}."""

Source = Callable[[], tuple[str, Manifest] | None]
"""Returns (version, manifest) of the newest release, or None while there is none."""


@dataclass(frozen=True)
class Bundle:
    version: str
    as_of: str
    online_prefix: str
    user_ids: np.ndarray
    title_ids: np.ndarray
    user_factors: np.ndarray
    title_factors: np.ndarray
    titles: TitleTable
    booster: lgb.Booster
    user_index: dict[str, int] = field(repr=False)
    title_index: dict[str, int] = field(repr=False)

    @classmethod
    def build(
        cls, version: str, manifest: Manifest, als: AlsModel, booster: lgb.Booster, titles
    ) -> Bundle:
        if titles.features.shape[0] != len(als.titles):
            raise ValueError(
                f"release {version}: the title table has {titles.features.shape[0]} rows but the "
                f"ALS model has {len(als.titles)} titles; they come from different dates"
            )
        users = als.users.astype(str)
        title_ids = als.titles.astype(str)
        return cls(
            version=version,
            as_of=manifest.get("as_of", ""),
            online_prefix=manifest.get("online_prefix", "feat:v1"),
            user_ids=users,
            title_ids=title_ids,
            user_factors=np.ascontiguousarray(als.user_factors, dtype=np.float32),
            title_factors=np.ascontiguousarray(als.title_factors, dtype=np.float32),
            titles=titles,
            booster=booster,
            user_index={u: i for i, u in enumerate(users.tolist())},
            title_index={t: i for i, t in enumerate(title_ids.tolist())},
        )


def load(version: str, manifest: Manifest, store: ObjectStoreResource) -> Bundle:
    """Read the three files a release names and check that they belong together."""
    als = AlsModel.from_bytes(store.get_bytes(manifest["als_key"]))
    booster = lgb.Booster(model_str=store.get_bytes(manifest["ranker_key"]).decode())
    titles = TitleTable.from_bytes(store.get_bytes(manifest["titles_key"]))
    return Bundle.build(version, manifest, als, booster, titles)


def manifest_file_source(path: str | Path) -> Source:
    """Releases described by a JSON file (for serving without a Dagster instance, and for the
    benchmark): the version is the manifest's "version", else its as_of and modification time."""
    path = Path(path)

    def newest() -> tuple[str, Manifest] | None:
        try:
            stat = path.stat()
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return str(manifest.get("version") or f"{manifest['as_of']}@{stat.st_mtime_ns}"), manifest

    return newest


def instance_source(instance) -> Source:
    """Releases recorded in a Dagster instance: the newest partition of `recommender_release`
    (a backfill of an older date never replaces a newer model), newest run first."""
    from dagster import AssetKey

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
