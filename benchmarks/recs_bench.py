"""Training and evaluation time of the recommendation models on 1M interactions.

Synthetic ratings with planted tastes (netflix_assets.recs.synthetic): 50k users x 20 ratings
over 10k titles. Each model is timed at 100k interactions (the baseline, same run) and at 1M,
and the ratio shows how its cost grows with 10x the data. The ranker's figures include its own
ALS fit before the cut and the candidate rows (5000 sampled users x 500 candidates), not the
Spark feature tables, which are timed by lake_bench. Evaluation is one seed over a sample of
2000 held-out users with both protocols (the asset runs three seeds).
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import pandas as pd
import torch

from netflix_assets.recs import synthetic, training
from netflix_assets.recs.ranker import TITLE_FEATURES, USER_FEATURES


def frame_of(users: int, titles: int, per_user: int) -> pd.DataFrame:
    raw = synthetic.ratings(users, titles, per_user, clusters=20, days=60, end=date(2026, 11, 1))
    return pd.DataFrame(
        {
            "user_id": "u" + raw["user_id"].astype(str),
            "title_id": "t" + raw["title_id"].astype(str),
            "ts": pd.to_datetime(raw["ts"], unit="s"),
            "weight": raw["rating"] / 5.0,
        }
    )


def simple_features(frame: pd.DataFrame, cutoff: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts-only stand-ins for the Spark feature tables (same columns)."""
    before = frame[frame["ts"] < pd.Timestamp(cutoff)]
    titles = before.groupby("title_id").size().rename("t_interactions_28d").reset_index()
    for column in TITLE_FEATURES[1:]:
        titles[column] = 0.0
    users = before.groupby("user_id").size().rename("u_interactions_28d").reset_index()
    for column in USER_FEATURES[1:]:
        users[column] = 0.0
    return users, titles


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(frame: pd.DataFrame) -> dict[str, float]:
    cutoff = training.choose_cutoff(frame, date(2026, 11, 1))
    users, titles = simple_features(frame, cutoff)
    return {
        "als (32 factors, 10 sweeps)": timed(lambda: training.fit_als(frame, 32, 10)),
        "ncf (NeuMF, 10 epochs)": timed(lambda: training.fit_ncf(frame)),
        "ranker (3 seeds + refit)": timed(
            lambda: training.train_ranker(frame, cutoff, users, titles, 32, 10)
        ),
        "evaluation (1 seed, 2000 users)": timed(
            lambda: training.evaluate_models(frame, 32, 10, seeds=(0,), max_users=2000)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--titles", type=int, default=10_000)
    parser.add_argument("--per-user", type=int, default=20)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    small = frame_of(args.users // 10, args.titles, args.per_user)
    large = frame_of(args.users, args.titles, args.per_user)
    base = run(small)
    full = run(large)
    print(f"{'step':34s} {len(small):>10,} rows {len(large):>10,} rows   ratio")
    for step, seconds in full.items():
        print(f"{step:34s} {base[step]:13.1f} s {seconds:13.1f} s {seconds / base[step]:7.1f}x")


if __name__ == "__main__":
    main()
