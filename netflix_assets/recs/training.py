"""Training and evaluating the candidate model on an interactions frame (pure; no Dagster).

Interactions are (user_id, title_id, ts, weight) rows. The served model is fit on all of them;
the evaluation refits on the leave-latest-out training part for each seed and scores the
held-out interaction under both protocols of evaluation.py, next to the popularity baseline.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from netflix_assets.recs import als
from netflix_assets.recs.evaluation import evaluate, leave_latest_out, popularity_scorer

SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class AlsModel:
    users: np.ndarray
    titles: np.ndarray
    user_factors: np.ndarray
    title_factors: np.ndarray

    def to_bytes(self) -> bytes:
        """One .npz file: ids and factors together, so they can never drift apart."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            users=self.users,
            titles=self.titles,
            user_factors=self.user_factors,
            title_factors=self.title_factors,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AlsModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(z["users"], z["titles"], z["user_factors"], z["title_factors"])


def _matrix(frame: pd.DataFrame, users: list[str], titles: list[str]):
    uidx = {u: i for i, u in enumerate(users)}
    tidx = {t: i for i, t in enumerate(titles)}
    return als.confidence_matrix(
        frame["user_id"].map(uidx).to_numpy(),
        frame["title_id"].map(tidx).to_numpy(),
        frame["weight"].to_numpy(),
        len(users),
        len(titles),
    )


def fit_als(
    frame: pd.DataFrame, factors: int = 32, iterations: int = 10, seed: int = 0
) -> AlsModel:
    users = sorted(frame["user_id"].unique())
    titles = sorted(frame["title_id"].unique())
    u, t = als.fit(_matrix(frame, users, titles), factors=factors, iterations=iterations, seed=seed)
    return AlsModel(np.array(users), np.array(titles), u, t)


def evaluate_als(
    frame: pd.DataFrame, factors: int = 32, iterations: int = 10, seeds=SEEDS
) -> dict[str, dict[str, dict[str, float]]]:
    """{model: {protocol: {metric: mean, metric_std: std}}} for ALS and popularity."""
    split = leave_latest_out(
        frame.rename(columns={"weight": "rating"}).assign(weight=frame["weight"])
    )
    if split.test.empty:
        raise ValueError("no user has two interactions: nothing to hold out")
    matrix = _matrix(split.train, split.users, split.titles)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {"als": {}, "popularity": {}}
    popularity = popularity_scorer(split)
    for seed in seeds:
        u, t = als.fit(matrix, factors=factors, iterations=iterations, seed=seed)

        def score(user: int, items: np.ndarray, u=u, t=t) -> np.ndarray:
            return t[items] @ u[user]

        for protocol in ("full", "sampled"):
            runs["als"].setdefault(protocol, []).append(evaluate(split, score, protocol, seed))
            runs["popularity"].setdefault(protocol, []).append(
                evaluate(split, popularity, protocol, seed)
            )
    out: dict[str, dict[str, dict[str, float]]] = {}
    for model, protocols in runs.items():
        out[model] = {}
        for protocol, results in protocols.items():
            summary: dict[str, float] = {}
            for metric in results[0]:
                values = [r[metric] for r in results]
                summary[metric] = float(np.mean(values))
                summary[f"{metric}_std"] = float(np.std(values))
            out[model][protocol] = summary
    out["split"] = {
        "sizes": {"users_held_out": float(len(split.test)), "train_rows": float(len(split.train))}
    }
    return out
