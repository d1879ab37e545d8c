"""A loaded release: the models one `recommender_release` names, ready to answer requests, and
where releases are found (a Dagster instance, or a manifest file).

A bundle is immutable once opened (serving.prepared makes and opens them). The store swaps a
whole bundle for a newer one, so a request that picked a bundle up finishes with the same models
it started with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netflix_assets.recs import ranker
from netflix_assets.recs.generators import FactorMoments, ItemItem
from netflix_assets.recs.two_stage import Pipeline, TitleTable

Manifest = dict[str, str]
"""{"as_of", "als_key", "ranker_key", "titles_key", "online_prefix", optional "version", and the
pipeline: "generator", "use_ranker", "mmr_lambda", with "item_item_key" and "blend_weight" when
the generator uses them (a manifest without them serves ALS -> ranker -> MMR 0.8)}."""

Source = Callable[[], tuple[str, Manifest] | None]
"""Returns (version, manifest) of the newest release, or None while there is none."""


def _positions(sorted_ids: np.ndarray, keys: list[str]) -> np.ndarray:
    """Rows of `keys` in `sorted_ids` (binary search), unknown keys left out."""
    if not keys or not sorted_ids.size:
        return np.empty(0, dtype=np.int64)
    wanted = np.asarray(keys)
    at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return np.unique(at[sorted_ids[at] == wanted]).astype(np.int64)


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
    scorer: ranker.Scorer
    pipeline: Pipeline = field(default_factory=Pipeline)
    item_item: ItemItem | None = None  # the item-item generator (EASE / RP3beta), if served
    blend_weight: float = 0.5
    moments: FactorMoments | None = None  # of title_factors, for a blend (prepared once)

    def user(self, user_id: str) -> int | None:
        """The user's row, by binary search over the sorted ids (no 1M-entry dict to build
        while a swap loads, which would hold the GIL and stall requests)."""
        found = _positions(self.user_ids, [user_id])
        return int(found[0]) if found.size else None

    def title_positions(self, title_ids: list[str]) -> np.ndarray:
        """Rows of the given titles that the model knows (unknown ones are skipped)."""
        return _positions(self.title_ids, title_ids)


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
