"""The ranker: LightGBM lambdarank over the candidates the ALS model proposes.

Candidate generation is recall-oriented (500 titles by dot product); the ranker reorders them
with features the dot product cannot use. Its input is one row per (user, candidate) with these
columns, and a `group` column naming the user (one query per user):

- `als_score`: the candidate generator's dot product;
- `candidate_rank`: its position in the candidate list (1 = best);
- `title_popularity`: t_interactions_28d from the title features;
- `title_trend`: t_trend;
- `title_completion_rate`: t_completion_rate;
- `user_activity`: u_interactions_28d from the user features;
- `pair_interactions`: ut_interactions (0 for titles the user never touched).

The label is graded relevance (0: no interaction on the label day, 1: played, 2: completed).
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

FEATURES = (
    "als_score",
    "candidate_rank",
    "title_popularity",
    "title_trend",
    "title_completion_rate",
    "user_activity",
    "pair_interactions",
)


def _groups(frame: pd.DataFrame) -> np.ndarray:
    """Query sizes in row order; the rows of one group must be contiguous."""
    keys = frame["group"].to_numpy()
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    if len(starts) != len(np.unique(keys)):
        raise ValueError("rows of each group must be contiguous; sort by group first")
    return np.diff(np.r_[starts, len(keys)])


def train(
    frame: pd.DataFrame, label: str = "label", seed: int = 0, rounds: int = 100
) -> lgb.Booster:
    """A lambdarank booster optimizing NDCG@10 over the groups."""
    data = lgb.Dataset(
        frame[list(FEATURES)], label=frame[label], group=_groups(frame), free_raw_data=False
    )
    params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "seed": seed,
        "deterministic": True,
        "num_threads": 2,
        "verbose": -1,
    }
    return lgb.train(params, data, num_boost_round=rounds)


def predict(booster: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    return booster.predict(frame[list(FEATURES)], num_threads=1)


def save(booster: lgb.Booster, path: str | Path) -> Path:
    booster.save_model(str(path))
    return Path(path)


def load(path: str | Path) -> lgb.Booster:
    return lgb.Booster(model_file=str(path))
