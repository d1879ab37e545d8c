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
    max_sim = np.full(n, -np.inf)
    chosen: list[int] = []
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = np.where(available, lam * relevance - (1 - lam) * penalty, -np.inf)
        pick = int(np.argmax(value))
        chosen.append(pick)
        available[pick] = False
        max_sim = np.maximum(max_sim, unit @ unit[pick])
    return chosen
