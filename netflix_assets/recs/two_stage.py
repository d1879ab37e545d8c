"""Candidates, ranker rows and MMR: the recommendation path shared by training and serving.

Training builds ranker rows with exactly the functions the serving layer calls per request, so
the two cannot drift apart. Everything is numpy on indices (the ALS model's title order); no
pandas and no I/O, because the serving path runs this per request in a few milliseconds.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from netflix_assets.recs.mmr import mmr
from netflix_assets.recs.ranker import FEATURES, TITLE_FEATURES, USER_FEATURES

N_CANDIDATES = 500


@dataclass(frozen=True)
class TitleTable:
    """Title features aligned with a model's title order, and the cold-start order."""

    features: np.ndarray  # (titles, len(TITLE_FEATURES)) float32; zeros for unknown titles
    popular: np.ndarray  # title indices, most interactions in the last 28 days first

    @classmethod
    def build(cls, titles: np.ndarray, frame: pd.DataFrame | None) -> TitleTable:
        """From a features_title frame (title_id + TITLE_FEATURES), reordered to `titles`."""
        table = np.zeros((len(titles), len(TITLE_FEATURES)), dtype=np.float32)
        if frame is not None and len(frame):
            index = pd.Index(frame["title_id"].astype(str))
            where = index.get_indexer(pd.Index(np.asarray(titles).astype(str)))
            known = where >= 0
            values = frame[list(TITLE_FEATURES)].fillna(0.0).to_numpy(dtype=np.float32)
            table[known] = values[where[known]]
        popularity = table[:, TITLE_FEATURES.index("t_interactions_28d")]
        return cls(table, np.argsort(-popularity, kind="stable"))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, features=self.features, popular=self.popular)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TitleTable:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(z["features"], z["popular"])


def user_vector(values: Mapping[str, object] | None) -> np.ndarray:
    """USER_FEATURES in order from an online or offline feature mapping; missing -> 0."""
    out = np.zeros(len(USER_FEATURES), dtype=np.float32)
    if values:
        for i, name in enumerate(USER_FEATURES):
            raw = values.get(name)
            if raw is not None:
                out[i] = float(raw)
    return out


def candidates(
    user_factor: np.ndarray, title_factors: np.ndarray, seen: np.ndarray, n: int = N_CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """(title indices, ALS scores): the n best titles by dot product, best first, none seen."""
    return top_unseen(title_factors @ user_factor, seen, n)


def top_unseen(
    scores: np.ndarray, seen: np.ndarray, n: int = N_CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """(title indices, scores): the n best-scoring titles, best first, none seen. `scores` is
    overwritten where seen."""
    if seen.size:
        scores[seen] = -np.inf
    n = min(n, len(scores) - int(np.unique(seen).size))
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    # The exact top n without partitioning the catalogue (np.partition of 100k scores was the
    # largest share of a request): a threshold from a strided sample keeps a few times n titles
    # in one comparison pass; when at least n pass it, the n-th best of the catalogue is among
    # them, so partitioning only those gives the same cut. A sample that guessed too high (too
    # few pass) falls back to the whole catalogue. The stable sort breaks ties by title index,
    # so the list is deterministic either way.
    above = _at_or_above_nth(scores, n)
    top = above[np.argsort(-scores[above], kind="stable")[:n]]
    return top, scores[top]


SAMPLE_EVERY = 64
"""Top-n threshold sampling: every 64th score, and the sample's rank 2n/64 + 8 as the guess."""


def _at_or_above_nth(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices (ascending) of every score at or above the n-th best."""
    if len(scores) >= 16 * SAMPLE_EVERY and n * 8 <= len(scores):
        sample = scores[::SAMPLE_EVERY]
        rank = min(len(sample) - 1, 2 * n // SAMPLE_EVERY + 8)
        guess = np.partition(sample, len(sample) - 1 - rank)[len(sample) - 1 - rank]
        kept = np.flatnonzero(scores >= guess)
        if len(kept) >= n:
            part = scores[kept]
            cut = np.partition(part, len(part) - n)[len(part) - n]
            return kept[part >= cut]
    cut = len(scores) - n
    return np.flatnonzero(scores >= np.partition(scores, cut)[cut])


def feature_rows(
    cand: np.ndarray, als_scores: np.ndarray, titles: TitleTable, user: np.ndarray
) -> np.ndarray:
    """The ranker's input matrix, columns in ranker.FEATURES order."""
    rows = np.empty((len(cand), len(FEATURES)), dtype=np.float32)
    rows[:, 0] = als_scores
    rows[:, 1] = np.arange(1, len(cand) + 1)
    width = len(TITLE_FEATURES)
    rows[:, 2 : 2 + width] = titles.features[cand]
    rows[:, 2 + width :] = user
    return rows


def diversify(
    cand: np.ndarray,
    ranked_scores: np.ndarray,
    title_factors: np.ndarray,
    k: int,
    pool: int = 100,
    lam: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """(titles, scores): MMR over the ranker's best `pool` with the ALS title factors as the
    similarity space, so a list is not twenty episodes of one taste."""
    order = np.argsort(-ranked_scores, kind="stable")[:pool]
    picks = mmr(ranked_scores[order], title_factors[cand[order]], k, lam=lam)
    chosen = order[picks]
    return cand[chosen], ranked_scores[chosen]


@dataclass(frozen=True)
class Pipeline:
    """What a release serves, chosen by the evaluation: which candidate generator ("als",
    "ease" or "rp3b"), whether the ranker reorders its candidates (only when it beat the
    generator's own order on held-out users), and MMR's lambda (1.0 = no MMR)."""

    generator: str = "als"
    use_ranker: bool = True
    mmr_lambda: float = 0.8
    n_candidates: int = N_CANDIDATES
    pool: int = 100

    def to_manifest(self) -> dict[str, str]:
        return {
            "generator": self.generator,
            "use_ranker": "true" if self.use_ranker else "false",
            "mmr_lambda": repr(float(self.mmr_lambda)),
        }

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, object]) -> Pipeline:
        """The pipeline a manifest names; a manifest from before pipelines existed served ALS
        -> ranker -> MMR 0.8, and still does."""
        return cls(
            generator=str(manifest.get("generator", "als")),
            use_ranker=str(manifest.get("use_ranker", "true")).lower() == "true",
            mmr_lambda=float(manifest.get("mmr_lambda", 0.8)),
        )


Ranking = Callable[[np.ndarray], np.ndarray]
"""rows (FEATURES matrix) -> ranker scores."""


def serve_list(
    generator_scores: np.ndarray,
    seen: np.ndarray,
    k: int,
    pipeline: Pipeline,
    titles: TitleTable | None,
    user: np.ndarray | None,
    rank: Ranking | None,
    similarity: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(titles, scores): the served list for one user, given the generator's scores of every
    title. Candidates (never a seen title) -> the ranker when the pipeline uses it -> MMR over
    `similarity` (title embeddings) when lambda < 1. The service and the evaluation both call
    this, so what is evaluated is what is served."""
    n = pipeline.n_candidates
    if not pipeline.use_ranker:  # only the best `pool` (MMR) or the best k can be served
        n = min(n, k if pipeline.mmr_lambda >= 1.0 else pipeline.pool)
    cand, cand_scores = top_unseen(generator_scores, seen, n)
    if cand.size == 0:
        return cand, cand_scores
    if pipeline.use_ranker:
        if rank is None or titles is None or user is None:
            raise ValueError("the pipeline uses the ranker but no ranker or features were given")
        scores = np.asarray(rank(feature_rows(cand, cand_scores, titles, user)), np.float64)
    else:
        scores = cand_scores.astype(np.float64)
    if pipeline.mmr_lambda >= 1.0:
        order = np.argsort(-scores, kind="stable")[:k]
        return cand[order], scores[order]
    return diversify(cand, scores, similarity, k, pipeline.pool, pipeline.mmr_lambda)


def because_of(
    picked: np.ndarray, seen: np.ndarray, title_factors: np.ndarray, min_similarity: float = 0.3
) -> list[int | None]:
    """For each picked title, the seen title closest to it in factor space (cosine), or None
    when no seen title is similar enough to explain the pick."""
    if seen.size == 0 or picked.size == 0:
        return [None] * len(picked)

    def unit(m: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.where(norms == 0, 1.0, norms)

    sims = unit(title_factors[picked]) @ unit(title_factors[seen]).T
    best = sims.argmax(axis=1)
    return [int(seen[b]) if sims[i, b] >= min_similarity else None for i, b in enumerate(best)]
