"""The ranker: LightGBM lambdarank over the candidates the ALS model proposes.

Candidate generation is recall-oriented (500 titles by dot product); the ranker reorders them
with features the dot product cannot use. Its input is one row per (user, candidate) with the
columns of FEATURES, and a `group` column naming the user (one query per user):

- `als_score`: the candidate generator's dot product;
- `candidate_rank`: its position in the candidate list (1 = best);
- the title features of TITLE_FEATURES and the user features of USER_FEATURES, with the
  meanings documented in spark_jobs/features.py (popularity, trend, completion, recency...).

Pair features (ut_*) are left out on purpose: candidates never include a title the user already
interacted with, so they would be zero for every row, in training and in serving alike.
The label is 1 when the user interacted with the candidate in the label period, else 0.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

TITLE_FEATURES = (
    "t_interactions_28d",
    "t_trend",
    "t_completion_rate",
    "t_mean_weight",
    "t_popularity_rank",
)
USER_FEATURES = ("u_interactions_28d", "u_mean_weight", "u_days_since_last", "u_completion_rate")
FEATURES = ("als_score", "candidate_rank", *TITLE_FEATURES, *USER_FEATURES)


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
        # Small trees and large leaves: a day's labels are few and noisy, and with the default
        # 31 leaves the ranker learned noise and lost to plain popularity on the demo's data.
        "learning_rate": 0.05,
        "num_leaves": 7,
        "min_data_in_leaf": 100,
        "seed": seed,
        "deterministic": True,
        "num_threads": 2,
        "verbose": -1,
    }
    return lgb.train(params, data, num_boost_round=rounds)


def predict(booster: lgb.Booster, rows: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Scores for a frame with the FEATURES columns, or a matrix with them in that order (the
    serving path passes a float32 matrix: no pandas on the hot path)."""
    if isinstance(rows, pd.DataFrame):
        rows = rows[list(FEATURES)].to_numpy(dtype=np.float64)
    return booster.predict(rows, num_threads=1)


def save(booster: lgb.Booster, path: str | Path) -> Path:
    booster.save_model(str(path))
    return Path(path)


def load(path: str | Path) -> lgb.Booster:
    return lgb.Booster(model_file=str(path))
