"""One recommendation request, end to end, on a bundle and the user's online features.

The release's pipeline (bundle.pipeline): candidates from its generator (ALS, EASE, RP3beta or
an ALS + item-item blend; 500, never a seen title) -> the LightGBM ranker when it earned its
place -> MMR with the release's lambda -> k titles with a score and a reason, through
two_stage.serve_list, the function the evaluation scores. Users the generator has nothing
personal for, and users whose every candidate was seen, get the cold-start list: the most
popular titles of the last 28 days that they have not seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from netflix_assets.recs import generators, ranker, two_stage
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
    scores = generators.user_scores(
        bundle.pipeline.generator,
        None if user is None else bundle.user_factors[user],
        bundle.title_factors,
        bundle.item_item,
        seen_idx,
        bundle.blend_weight,
        bundle.moments,
    )
    if scores is None:
        return cold_start(bundle, seen_idx, k)
    pipeline = bundle.pipeline
    if n_candidates != pipeline.n_candidates:
        pipeline = replace(pipeline, n_candidates=n_candidates)
    picked, picked_scores = two_stage.serve_list(
        scores,
        seen_idx,
        k,
        pipeline,
        bundle.titles,
        two_stage.user_vector(features),
        bundle.scorer.score,
        bundle.title_factors,
    )
    if picked.size == 0:
        return cold_start(bundle, seen_idx, k)
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
