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

from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.two_stage import TitleTable
from resources.object_store import ObjectStoreResource

Manifest = dict[str, str]
"""{"as_of", "als_key", "ranker_key", "titles_key", "online_prefix", optional "version"}."""

Source = Callable[[], tuple[str, Manifest] | None]
"""Returns (version, manifest) of the newest release, or None while there is none."""


def _positions(sorted_ids: np.ndarray, keys: list[str]) -> np.ndarray:
    if not keys:
        return np.empty(0, dtype=np.int64)
    wanted = np.asarray(keys, dtype=sorted_ids.dtype) if sorted_ids.size else np.asarray(keys)
    at = np.searchsorted(sorted_ids, wanted)
    at = np.minimum(at, max(len(sorted_ids) - 1, 0))
    hit = sorted_ids[at] == np.asarray(keys) if sorted_ids.size else np.zeros(len(keys), bool)
    return np.unique(at[hit]).astype(np.int64)


def _sorted(ids: np.ndarray, *rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """ids in ascending order with the rows that belong to them (fit_als already sorts)."""
    if ids.size < 2 or bool(np.all(ids[:-1] < ids[1:])):
        return (ids, *rows)
    order = np.argsort(ids, kind="stable")
    return (ids[order], *(r[order] for r in rows))


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
        users, user_factors = _sorted(als.users.astype(str), als.user_factors)
        title_ids, title_factors, features = _sorted(
            als.titles.astype(str), als.title_factors, titles.features
        )
        if title_ids is not als.titles and not np.array_equal(title_ids, als.titles.astype(str)):
            # Titles were reordered: the cold-start order must follow them.
            rank = np.argsort(np.argsort(als.titles.astype(str), kind="stable"), kind="stable")
            titles = TitleTable(features, rank[titles.popular])
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
