"""One recommendation request, end to end, on a bundle and the user's online features.

candidates (ALS, 500, never a seen title) -> LightGBM ranker -> MMR -> k titles with a score and
a reason. Unknown users, and users whose every candidate was seen, get the cold-start list: the
most popular titles of the last 28 days that they have not seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from netflix_assets.recs import ranker, two_stage
from netflix_assets.serving.bundle import Bundle


@dataclass(frozen=True)
class Item:
    title_id: str
    score: float
    reason: dict[str, str]


@dataclass(frozen=True)
class Result:
    items: list[Item]
    cold_start: bool


def seen_indices(bundle: Bundle, seen: Iterable[str]) -> np.ndarray:
    return bundle.title_positions(list(seen))


def cold_start(bundle: Bundle, seen: np.ndarray, k: int) -> Result:
    popular = bundle.titles.popular
    if seen.size:
        popular = popular[~np.isin(popular, seen)]
    top = popular[:k]
    counts = bundle.titles.features[top, ranker.TITLE_FEATURES.index("t_interactions_28d")]
    items = [
        Item(str(bundle.title_ids[t]), float(c), {"kind": "popular"})
        for t, c in zip(top, counts, strict=True)
    ]
    return Result(items, cold_start=True)


def recommend(
    bundle: Bundle,
    user_id: str,
    features: Mapping[str, object] | None,
    seen: Iterable[str],
    k: int,
    n_candidates: int = two_stage.N_CANDIDATES,
) -> Result:
    seen_idx = seen_indices(bundle, seen)
    user = bundle.user(user_id)
    if user is None:
        return cold_start(bundle, seen_idx, k)
    cand, als_scores = two_stage.candidates(
        bundle.user_factors[user], bundle.title_factors, seen_idx, n_candidates
    )
    if cand.size == 0:
        return cold_start(bundle, seen_idx, k)
    rows = two_stage.feature_rows(cand, als_scores, bundle.titles, two_stage.user_vector(features))
    scores = bundle.scorer.score(rows)
    picked, picked_scores = two_stage.diversify(cand, scores, bundle.title_factors, k)
    because = two_stage.because_of(picked, seen_idx, bundle.title_factors)
    items = [
        Item(
            str(bundle.title_ids[t]),
            float(s),
            {"kind": "because_you_watched", "title_id": str(bundle.title_ids[b])}
            if b is not None
            else {"kind": "for_you"},
        )
        for t, s, b in zip(picked, picked_scores, because, strict=True)
    ]
    return Result(items, cold_start=False)
