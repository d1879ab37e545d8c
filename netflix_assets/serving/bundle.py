"""A loaded release: the models one `recommender_release` names, ready to answer requests.

A bundle is immutable once built. The store swaps a whole bundle for a newer one, so a request
that picked a bundle up finishes with the same models it started with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from netflix_assets.recs import ranker
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.two_stage import TitleTable
from resources.object_store import ObjectStoreResource

Manifest = dict[str, str]
"""{"as_of", "als_key", "ranker_key", "titles_key", "online_prefix", optional "version"}."""

Source = Callable[[], tuple[str, Manifest] | None]
"""Returns (version, manifest) of the newest release, or None while there is none."""


def _positions(sorted_ids: np.ndarray, keys: list[str]) -> np.ndarray:
    """Rows of `keys` in `sorted_ids` (binary search), unknown keys left out."""
    if not keys or not sorted_ids.size:
        return np.empty(0, dtype=np.int64)
    wanted = np.asarray(keys)
    at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return np.unique(at[sorted_ids[at] == wanted]).astype(np.int64)


def _sort_order(ids: np.ndarray) -> np.ndarray | None:
    """The permutation that sorts `ids`, or None when they are sorted already (fit_als sorts)."""
    if ids.size < 2 or bool(np.all(ids[:-1] < ids[1:])):
        return None
    return np.argsort(ids, kind="stable")


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
    scorer: ranker.Scorer

    def user(self, user_id: str) -> int | None:
        """The user's row, by binary search over the sorted ids (no 1M-entry dict to build
        while a swap loads, which would hold the GIL and stall requests)."""
        found = _positions(self.user_ids, [user_id])
        return int(found[0]) if found.size else None

    def title_positions(self, title_ids: list[str]) -> np.ndarray:
        """Rows of the given titles that the model knows (unknown ones are skipped)."""
        return _positions(self.title_ids, title_ids)

    @classmethod
    def build(
        cls, version: str, manifest: Manifest, als: AlsModel, booster: lgb.Booster, titles
    ) -> Bundle:
        if titles.features.shape[0] != len(als.titles):
            raise ValueError(
                f"release {version}: the title table has {titles.features.shape[0]} rows but the "
                f"ALS model has {len(als.titles)} titles; they come from different dates"
            )
        users, user_factors = als.users.astype(str), als.user_factors
        order = _sort_order(users)
        if order is not None:
            users, user_factors = users[order], user_factors[order]
        title_ids, title_factors = als.titles.astype(str), als.title_factors
        order = _sort_order(title_ids)
        if order is not None:
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            title_ids, title_factors = title_ids[order], title_factors[order]
            titles = TitleTable(titles.features[order], inverse[titles.popular])
        return cls(
            version=version,
            as_of=manifest.get("as_of", ""),
            online_prefix=manifest.get("online_prefix", "feat:v1"),
            user_ids=users,
            title_ids=title_ids,
            user_factors=np.ascontiguousarray(user_factors, dtype=np.float32),
            title_factors=np.ascontiguousarray(title_factors, dtype=np.float32),
            titles=titles,
            booster=booster,
            scorer=ranker.compile_scorer(booster),
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
