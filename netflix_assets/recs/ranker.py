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

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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

log = logging.getLogger(__name__)


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
        # One thread: OpenMP's second thread spins while it waits, and on a busy 2-core host
        # 100 rounds over 450 users x 500 candidates took 20-22 s of CPU on two threads
        # against 2.6 s on one (alternating runs, load 6-8; docs/RECS.md).
        "num_threads": 1,
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


@dataclass(frozen=True)
class Scorer:
    """The ranker as the serving path calls it: `score(rows)` for a FEATURES matrix.

    `engine` says what computes the scores: "lleaves" (the booster compiled to machine code by
    LLVM, about 10x faster than LightGBM's own tree walk on 500 rows x 100 trees, which was the
    largest share of a request) or "lightgbm" (the fallback when compilation is unavailable).
    """

    score: Callable[[np.ndarray], np.ndarray]
    engine: str


PROBE_ROWS = 512


def lightgbm_scorer(booster: lgb.Booster) -> Scorer:
    """LightGBM's own predict as a Scorer (the fallback, and the benchmark's baseline)."""
    return Scorer(lambda rows: predict(booster, rows), "lightgbm")


@dataclass(frozen=True)
class Probe:
    """Rows that reach many leaves, with LightGBM's scores for them: the reference a compiled
    forest must reproduce before it may serve. Kept with a prepared release, so the process that
    loads the compiled object can re-check it without LightGBM's model in memory."""

    rows: np.ndarray
    scores: np.ndarray

    @classmethod
    def of(cls, booster: lgb.Booster, seed: int = 0) -> Probe:
        """Each feature drawn around the booster's own split values."""
        rng = np.random.default_rng(seed)
        trees = booster.trees_to_dataframe()
        rows = rng.normal(0.0, 100.0, (PROBE_ROWS, booster.num_feature()))
        splits = trees.dropna(subset=["threshold"])
        for i, name in enumerate(booster.feature_name()):
            values = splits.loc[splits["split_feature"] == name, "threshold"].to_numpy(float)
            if values.size:
                rows[:, i] = rng.choice(values, PROBE_ROWS) + rng.normal(0.0, 1e-3, PROBE_ROWS)
        return cls(rows, predict(booster, rows))

    def check(self, scorer: Scorer) -> None:
        """Raise when `scorer` differs from LightGBM's recorded scores beyond float rounding."""
        got = scorer.score(self.rows)
        if not np.allclose(got, self.scores, rtol=1e-9, atol=1e-12):
            worst = int(np.argmax(np.abs(got - self.scores)))
            raise ValueError(
                f"compiled ranker differs from LightGBM on probe row {worst}: "
                f"{got[worst]!r} vs {self.scores[worst]!r}"
            )


def _lleaves_scorer(model_file: str | Path, object_file: str | Path | None) -> Scorer:
    """lleaves' forest for `model_file`; with `object_file`, the machine code is written there
    after compiling, or read from there (no IR built, no LLVM optimisation) when it exists."""
    import lleaves

    model = lleaves.Model(model_file=str(model_file))
    model.compile(cache=None if object_file is None else str(object_file))
    return Scorer(lambda rows: model.predict(rows, n_jobs=1), "lleaves")


def compile_scorer(
    booster: lgb.Booster, object_file: str | Path | None = None, probe: Probe | None = None
) -> Scorer:
    """A Scorer for serving, compiled with lleaves when it is available.

    The compiled forest is checked against LightGBM on probe rows spread over the booster's split
    values; a difference beyond float rounding raises, so a miscompiled ranker is never served.
    With `object_file`, the compiled code is kept there for `open_compiled`.
    """
    try:
        import lleaves  # noqa: F401
    except ImportError as exc:  # an install without the compiler still serves, more slowly
        log.warning("lleaves unavailable (%s); ranking with LightGBM", exc)
        return lightgbm_scorer(booster)
    fd, path = tempfile.mkstemp(suffix=".txt", prefix="ranker-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(booster.model_to_string())
        scorer = _lleaves_scorer(path, object_file)
    finally:
        os.unlink(path)
    (probe or Probe.of(booster)).check(scorer)
    return scorer


def open_compiled(model_file: str | Path, object_file: str | Path, probe: Probe) -> Scorer:
    """The forest `compile_scorer` wrote to `object_file`, loaded without recompiling, and
    checked again against the probe (a truncated or foreign object file is refused)."""
    scorer = _lleaves_scorer(model_file, object_file)
    probe.check(scorer)
    return scorer
