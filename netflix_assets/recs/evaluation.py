"""Offline evaluation: one protocol, two ways of ranking, and a popularity baseline.

Protocol (leave-the-latest-out): for each user with at least two interactions, the latest one
(ties broken by title id) is held out; everything else is training data. A model scores titles
for the user and the held-out title's rank gives, at K = 10:

- HR@10: 1 if the held-out title is in the top 10, else 0;
- NDCG@10: 1 / log2(rank + 1) for a 1-based rank ≤ 10, else 0;
- Recall@10: held-out titles found in the top 10 / held-out titles (one per user, so it equals HR
  here; kept separate because the protocol allows several held-out titles).

Ranking is done (a) over every title the user has not interacted with in training ("full"), and
(b) as in the NCF paper (He et al., 2017): against 99 titles sampled uniformly from those the user
has not interacted with, seeded ("sampled"), so figures compare with published MovieLens ones.
The popularity baseline scores a title by its training interaction count.

The ranker needs features computed as of a date, so it cannot be scored leak-free on per-user
held-out items of different dates. It is evaluated on a temporal hold-out instead (see
training.train_ranker): interactions before a cutoff date train everything, and for a held-out
half of the users active after it, the titles they then interacted with are the relevant set.
ALS and popularity are scored on exactly the same users and candidates, with list_metrics:
HR@10 (any relevant title in the top 10), NDCG@10 (binary gains, ideal DCG over
min(relevant, 10) titles) and Recall@10 (relevant titles in the top 10 / relevant titles).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

K = 10
SAMPLED_NEGATIVES = 99

Scorer = Callable[[int, np.ndarray], np.ndarray]
"""score(user_index, title_indices) -> scores, higher is better."""


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    users: list[str]
    titles: list[str]

    @property
    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.users)}

    @property
    def title_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.titles)}


def leave_latest_out(interactions: pd.DataFrame) -> Split:
    """Hold out each user's latest interaction (users with one interaction only train)."""
    df = interactions.sort_values(["user_id", "ts", "title_id"], kind="mergesort")
    last = df.groupby("user_id").tail(1)
    counts = df.groupby("user_id")["title_id"].transform("size")
    held = last[counts.loc[last.index] >= 2]
    train = df.drop(index=held.index)
    users = sorted(df["user_id"].unique())
    titles = sorted(df["title_id"].unique())
    return Split(train.reset_index(drop=True), held.reset_index(drop=True), users, titles)


def rank_metrics(rank: int, k: int = K) -> tuple[float, float]:
    """(hit, ndcg) for a 1-based rank."""
    if rank <= k:
        return 1.0, 1.0 / math.log2(rank + 1)
    return 0.0, 0.0


def evaluate(split: Split, score: Scorer, protocol: str, seed: int = 0) -> dict[str, float]:
    """HR@10, NDCG@10 and Recall@10 of `score` under the "full" or "sampled" protocol."""
    if protocol not in ("full", "sampled"):
        raise ValueError(f"protocol must be 'full' or 'sampled', not {protocol!r}")
    uidx, tidx = split.user_index, split.title_index
    seen: dict[int, set[int]] = {}
    for u, t in zip(split.train["user_id"], split.train["title_id"], strict=True):
        seen.setdefault(uidx[u], set()).add(tidx[t])
    rng = np.random.default_rng(seed)
    all_titles = np.arange(len(split.titles))
    hits, ndcgs = [], []
    for u, t in zip(split.test["user_id"], split.test["title_id"], strict=True):
        user, target = uidx[u], tidx[t]
        excluded = seen.get(user, set()) | {target}
        unseen = np.setdiff1d(all_titles, np.fromiter(excluded, dtype=np.int64))
        if protocol == "sampled":
            size = min(SAMPLED_NEGATIVES, len(unseen))
            unseen = rng.choice(unseen, size=size, replace=False)
        candidates = np.concatenate(([target], unseen))
        scores = np.asarray(score(user, candidates), dtype=np.float64)
        # Rank = 1 + titles scoring strictly higher; ties count against the model (pessimistic).
        rank = 1 + int(np.sum(scores[1:] >= scores[0]))
        hit, ndcg = rank_metrics(rank)
        hits.append(hit)
        ndcgs.append(ndcg)
    n = max(len(hits), 1)
    return {"hr@10": sum(hits) / n, "ndcg@10": sum(ndcgs) / n, "recall@10": sum(hits) / n}


def list_metrics(top: np.ndarray, relevant: set[int], k: int = K) -> dict[str, float]:
    """HR@k, NDCG@k and Recall@k of one ranked list against a set of relevant titles."""
    gains = [1.0 if int(t) in relevant else 0.0 for t in top[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    hits = sum(gains)
    return {
        "hr@10": 1.0 if hits else 0.0,
        "ndcg@10": dcg / ideal if ideal else 0.0,
        "recall@10": hits / len(relevant) if relevant else 0.0,
    }


def mean_metrics(results: list[dict[str, float]]) -> dict[str, float]:
    if not results:
        return {"hr@10": 0.0, "ndcg@10": 0.0, "recall@10": 0.0}
    return {m: float(np.mean([r[m] for r in results])) for m in results[0]}


def popularity_scorer(split: Split) -> Scorer:
    counts = np.zeros(len(split.titles))
    tidx = split.title_index
    for t in split.train["title_id"]:
        counts[tidx[t]] += 1

    def score(_user: int, titles: np.ndarray) -> np.ndarray:
        return counts[titles]

    return score


def over_seeds(
    run: Callable[[int], dict[str, float]], seeds: list[int]
) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each metric over seeds (model and sampling seeded)."""
    results = [run(seed) for seed in seeds]
    return {
        metric: (
            float(np.mean([r[metric] for r in results])),
            float(np.std([r[metric] for r in results])),
        )
        for metric in results[0]
    }
