"""Training and evaluating the candidate model on an interactions frame (pure; no Dagster).

Interactions are (user_id, title_id, ts, weight) rows. The served model is fit on all of them;
the evaluation refits on the leave-latest-out training part for each seed and scores the
held-out interaction under both protocols of evaluation.py, next to the popularity baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from netflix_assets.recs import als, ncf, ranker, two_stage
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.evaluation import (
    evaluate,
    leave_latest_out,
    list_metrics,
    mean_metrics,
    popularity_scorer,
)
from netflix_assets.recs.ncf import NcfConfig

SEEDS = (0, 1, 2)
DEFAULT_NCF = NcfConfig()


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


def fit_ncf(frame: pd.DataFrame, config: NcfConfig = DEFAULT_NCF, seed: int = 0):
    """(NeuMF, users, titles) fit on every distinct (user, title) pair of the frame."""
    users = sorted(frame["user_id"].unique())
    titles = sorted(frame["title_id"].unique())
    uidx = {u: i for i, u in enumerate(users)}
    tidx = {t: i for i, t in enumerate(titles)}
    model = ncf.fit(
        frame["user_id"].map(uidx).to_numpy(),
        frame["title_id"].map(tidx).to_numpy(),
        len(users),
        len(titles),
        config,
        seed,
    )
    return model, users, titles


def _summarize(results: list[dict[str, float]]) -> dict[str, float]:
    summary: dict[str, float] = {}
    for metric in results[0]:
        values = [r[metric] for r in results]
        summary[metric] = float(np.mean(values))
        summary[f"{metric}_std"] = float(np.std(values))
    return summary


def evaluate_models(
    frame: pd.DataFrame,
    factors: int = 32,
    iterations: int = 10,
    ncf_config: NcfConfig | None = DEFAULT_NCF,
    seeds=SEEDS,
    max_users: int | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """{model: {protocol: {metric: mean, metric_std: std}}} for ALS, NCF (unless None) and
    popularity under leave-the-latest-out, each model refit per seed on the training part.

    `max_users` evaluates a seeded sample of the held-out users (the same sample for every
    model), which bounds the cost of full ranking on large catalogs.
    """
    split = leave_latest_out(frame)
    if split.test.empty:
        raise ValueError("no user has two interactions: nothing to hold out")
    if max_users is not None and len(split.test) > max_users:
        sample = split.test.sample(n=max_users, random_state=0).sort_index()
        split = replace(split, test=sample.reset_index(drop=True))
    uidx, tidx = split.user_index, split.title_index
    train_users = split.train["user_id"].map(uidx).to_numpy()
    train_titles = split.train["title_id"].map(tidx).to_numpy()
    matrix = als.confidence_matrix(
        train_users,
        train_titles,
        split.train["weight"].to_numpy(),
        len(split.users),
        len(split.titles),
    )
    popularity = popularity_scorer(split)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {"als": {}, "popularity": {}}
    if ncf_config is not None:
        runs["ncf"] = {}
    for seed in seeds:
        u, t = als.fit(matrix, factors=factors, iterations=iterations, seed=seed)

        def als_score(user: int, items: np.ndarray, u=u, t=t) -> np.ndarray:
            return t[items] @ u[user]

        scorers = {"als": als_score, "popularity": popularity}
        if ncf_config is not None:
            model = ncf.fit(
                train_users, train_titles, len(split.users), len(split.titles), ncf_config, seed
            )
            scorers["ncf"] = ncf.scorer(model)
        for name, score in scorers.items():
            for protocol in ("full", "sampled"):
                runs[name].setdefault(protocol, []).append(evaluate(split, score, protocol, seed))
    out: dict[str, dict[str, dict[str, float]]] = {
        name: {protocol: _summarize(results) for protocol, results in protocols.items()}
        for name, protocols in runs.items()
    }
    out["split"] = {
        "sizes": {"users_held_out": float(len(split.test)), "train_rows": float(len(split.train))}
    }
    return out


def choose_cutoff(frame: pd.DataFrame, as_of: date, label_share: float = 0.2) -> date:
    """The ranker's temporal cut: the date after which about `label_share` of the interactions
    through `as_of` happened, kept strictly after the first day so both sides have data."""
    ts = pd.to_datetime(frame["ts"])
    first, last = ts.min().date(), min(ts.max().date(), as_of)
    if first >= last:
        raise ValueError(f"the ranker needs interactions on at least two dates; all are on {first}")
    quantile = ts.quantile(1.0 - label_share).date()
    return min(max(quantile, first + timedelta(days=1)), last)


@dataclass(frozen=True)
class RankerResult:
    booster: object
    als: AlsModel  # the candidate model fit before the cutoff that the rows were built from
    titles: two_stage.TitleTable
    report: dict[str, dict[str, float]]


def _by_user(frame: pd.DataFrame, uidx: dict, tidx: dict) -> dict[int, np.ndarray]:
    known = frame[frame["user_id"].isin(uidx.keys()) & frame["title_id"].isin(tidx.keys())]
    users = known["user_id"].map(uidx).to_numpy()
    titles = known["title_id"].map(tidx).to_numpy()
    out: dict[int, list[int]] = {}
    for u, t in zip(users, titles, strict=True):
        out.setdefault(int(u), []).append(int(t))
    return {u: np.unique(np.array(ts, dtype=np.int64)) for u, ts in out.items()}


def train_ranker(
    frame: pd.DataFrame,
    cutoff: date,
    user_features: pd.DataFrame,
    title_features: pd.DataFrame,
    factors: int = 32,
    iterations: int = 10,
    n_candidates: int = two_stage.N_CANDIDATES,
    rounds: int = 100,
    seeds=SEEDS,
    max_users: int | None = 5000,
) -> RankerResult:
    """LightGBM lambdarank on ALS candidates, evaluated on a temporal hold-out.

    Everything is cut at `cutoff`: ALS is fit on interactions before it, the features are the
    ones computed as of it (callers pass spark_jobs.features output for that date), and the
    label of a candidate is whether the user interacted with it on or after the cutoff. Users
    with such labels are split in halves per seed: one half trains the ranker, the other is
    scored by the ranker, by the ALS order and by popularity (list_metrics, mean and spread over
    seeds). The served booster is then refit on all labelled users with the first seed.
    Beyond `max_users` labelled users, a seeded sample of them is used.
    """
    ts = pd.to_datetime(frame["ts"])
    cut = pd.Timestamp(datetime(cutoff.year, cutoff.month, cutoff.day))
    if ts.dt.tz is not None:
        cut = cut.tz_localize(ts.dt.tz)
    before, after = frame[ts < cut], frame[ts >= cut]
    if before.empty or after.empty:
        raise ValueError(f"cutoff {cutoff} leaves no interactions on one side")
    model = fit_als(before, factors, iterations, seed=seeds[0])
    uidx = {u: i for i, u in enumerate(model.users)}
    tidx = {t: i for i, t in enumerate(model.titles)}
    seen = _by_user(before, uidx, tidx)
    later = _by_user(after, uidx, tidx)
    relevant = {u: set(ts_.tolist()) - set(seen.get(u, [])) for u, ts_ in later.items()}
    relevant = {u: r for u, r in relevant.items() if r}
    if max_users is not None and len(relevant) > max_users:
        # Rows are users x candidates (500 each): a seeded sample bounds memory and time.
        keep = np.random.default_rng(seeds[0]).choice(sorted(relevant), max_users, replace=False)
        relevant = {int(u): relevant[int(u)] for u in keep}
    if len(relevant) < 4:
        raise ValueError(
            f"only {len(relevant)} users interacted with a new, known title after {cutoff}; "
            "the ranker needs at least 4 to train and evaluate"
        )
    titles = two_stage.TitleTable.build(model.titles, title_features)
    ufeat = user_features.set_index("user_id")
    counts = np.bincount(before["title_id"].map(tidx).to_numpy(), minlength=len(tidx))
    empty = np.empty(0, dtype=np.int64)

    rows_by_user: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for u in sorted(relevant):
        user_id = model.users[u]
        values = ufeat.loc[user_id].to_dict() if user_id in ufeat.index else None
        cand, scores = two_stage.candidates(
            model.user_factors[u], model.title_factors, seen.get(u, empty), n_candidates
        )
        rows = two_stage.feature_rows(cand, scores, titles, two_stage.user_vector(values))
        rows_by_user[u] = (cand, rows)

    def training_frame(users: list[int]) -> pd.DataFrame:
        parts = []
        for u in users:
            cand, rows = rows_by_user[u]
            part = pd.DataFrame(rows, columns=list(ranker.FEATURES))
            part["label"] = np.isin(cand, list(relevant[u])).astype(int)
            part["group"] = u
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    runs: dict[str, list[dict[str, float]]] = {"ranker": [], "als": [], "popularity": []}
    users = sorted(relevant)
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(users)
        half = len(order) // 2
        held, train_users = [int(u) for u in order[:half]], sorted(int(u) for u in order[half:])
        booster = ranker.train(training_frame(train_users), seed=seed, rounds=rounds)
        per_model: dict[str, list[dict[str, float]]] = {k: [] for k in runs}
        for u in held:
            cand, rows = rows_by_user[u]
            ranked = cand[np.argsort(-ranker.predict(booster, rows), kind="stable")]
            pop = counts.astype(np.float64)
            pop[seen.get(u, empty)] = -1.0
            pop_top = np.argsort(-pop, kind="stable")[:10]
            per_model["ranker"].append(list_metrics(ranked, relevant[u]))
            per_model["als"].append(list_metrics(cand, relevant[u]))
            per_model["popularity"].append(list_metrics(pop_top, relevant[u]))
        for name, results in per_model.items():
            runs[name].append(mean_metrics(results))
    report = {name: _summarize(results) for name, results in runs.items()}
    report["sizes"] = {
        "labelled_users": float(len(users)),
        "train_interactions": float(len(before)),
        "label_interactions": float(len(after)),
        "candidates_per_user": float(n_candidates),
    }
    served = ranker.train(training_frame(users), seed=seeds[0], rounds=rounds)
    return RankerResult(served, model, titles, report)
