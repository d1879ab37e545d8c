"""Maximal marginal relevance: trade a little relevance for a less repetitive list.

Carbonell and Goldstein (1998): pick, one at a time, the candidate maximizing
lam * relevance - (1 - lam) * max cosine similarity to what is already picked. With lam = 1 it
is the plain ranking; lower lam spreads the list over more of the embedding space.
"""

from __future__ import annotations

import numpy as np


def mmr(scores: np.ndarray, embeddings: np.ndarray, k: int, lam: float = 0.7) -> list[int]:
    """Indices (into `scores`) of k diverse, relevant candidates, in pick order."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be within 0..1, got {lam}")
    n = len(scores)
    k = min(k, n)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.where(norms == 0, 1.0, norms)
    relevance = np.asarray(scores, dtype=np.float64)
    spread = relevance.max() - relevance.min()
    relevance = (relevance - relevance.min()) / spread if spread > 0 else np.zeros(n)
    # All pairwise similarities in one product: each pick then costs a few length-n operations
    # instead of a matrix-vector product.
    sims = unit @ unit.T
    gain = lam * relevance
    value = gain.copy()
    max_sim: np.ndarray | None = None
    chosen: list[int] = []
    for _ in range(k):
        pick = int(np.argmax(value))
        chosen.append(pick)
        # Max similarity to the picks so far; before the first pick there is no penalty.
        max_sim = (
            sims[pick].astype(np.float64) if max_sim is None else np.maximum(max_sim, sims[pick])
        )
        value = gain - (1 - lam) * max_sim
        value[chosen] = -np.inf
    return chosen
