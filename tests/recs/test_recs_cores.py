"""Ratings files, the evaluation protocol and ALS, on small files the tests write."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from netflix_assets.recs import als
from netflix_assets.recs.evaluation import (
    evaluate,
    leave_latest_out,
    over_seeds,
    popularity_scorer,
    rank_metrics,
)
from netflix_assets.recs.ratings import read_ratings


def test_three_formats_and_namespace(tmp_path) -> None:
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n"
    )
    for name in ("u.data", "ratings.dat", "ratings.csv"):
        frame, bad = read_ratings(tmp_path / name)
        assert len(frame) == 2 and not bad, name
    frame, _ = read_ratings(tmp_path / "ratings.csv", namespace="ml")
    assert frame.iloc[1].to_dict() == {
        "user_id": "ml:1",
        "title_id": "ml:3",
        "rating": 4.5,
        "ts": 964981247,
    }


def test_bad_lines_are_reported_with_their_number(tmp_path) -> None:
    path = tmp_path / "u.data"
    path.write_text("1\t2\t3\t100\n1\t2\n1\t3\tfive\t100\n1\t4\t99\t100\n")
    frame, bad = read_ratings(path)
    assert len(frame) == 1
    assert [(b.line, b.reason.split(" ")[0]) for b in bad] == [
        (2, "expected"),
        (3, "rating"),
        (4, "rating"),
    ]
    (tmp_path / "x.txt").write_text("hello world\n")
    with pytest.raises(ValueError, match="not a MovieLens ratings file"):
        read_ratings(tmp_path / "x.txt")


def test_leave_latest_out_holds_out_the_latest_and_leaks_nothing() -> None:
    df = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b"],
            "title_id": ["x", "y", "z", "x"],
            "rating": [1.0] * 4,
            "ts": [1, 3, 2, 5],
        }
    )
    split = leave_latest_out(df)
    assert split.test[["user_id", "title_id"]].values.tolist() == [["a", "y"]]
    assert len(split.train) == 3 and "y" not in set(
        split.train[split.train.user_id == "a"].title_id
    )


def test_rank_metrics_exact() -> None:
    assert rank_metrics(1) == (1.0, 1.0)
    assert rank_metrics(3) == (1.0, pytest.approx(1 / math.log2(4)))
    assert rank_metrics(11) == (0.0, 0.0)


def planted(users: int = 300, titles: int = 200, clusters: int = 5, seed: int = 3) -> pd.DataFrame:
    """Users in taste clusters watch mostly their cluster's titles, plus some popular ones."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        c = u % clusters
        own = [t for t in range(titles) if t % clusters == c]
        picks = list(rng.choice(own, size=12, replace=False)) + list(rng.choice(10, size=2))
        for i, t in enumerate(picks):
            rows.append((f"u{u}", f"t{t}", 1.0, int(rng.integers(0, 10_000)) + i))
    return pd.DataFrame(rows, columns=["user_id", "title_id", "rating", "ts"]).drop_duplicates(
        ["user_id", "title_id"]
    )


def test_als_beats_popularity_on_both_protocols() -> None:
    split = leave_latest_out(planted())
    uidx, tidx = split.user_index, split.title_index
    matrix = als.confidence_matrix(
        split.train["user_id"].map(uidx).to_numpy(),
        split.train["title_id"].map(tidx).to_numpy(),
        split.train["rating"].to_numpy(),
        len(split.users),
        len(split.titles),
    )
    users, titles = als.fit(matrix, factors=16, iterations=8, seed=1)

    def score(user: int, items: np.ndarray) -> np.ndarray:
        return titles[items] @ users[user]

    pop = popularity_scorer(split)
    for protocol in ("sampled", "full"):
        model = evaluate(split, score, protocol, seed=0)
        baseline = evaluate(split, pop, protocol, seed=0)
        assert model["hr@10"] > baseline["hr@10"] + 0.1, (protocol, model, baseline)
        assert model["ndcg@10"] > baseline["ndcg@10"]
    seen = set(split.train[split.train.user_id == split.users[0]]["title_id"].map(tidx))
    top = als.recommend(users, titles, 0, 10, exclude=seen)
    assert len(top) == 10 and not set(top) & seen
    spread = over_seeds(lambda s: evaluate(split, score, "sampled", seed=s), [0, 1, 2])
    assert set(spread) == {"hr@10", "ndcg@10", "recall@10"} and spread["hr@10"][1] < 0.1


def test_import_ratings_is_idempotent_and_keeps_bad_lines(tmp_path) -> None:
    from deltalake import DeltaTable

    from netflix_assets.recs.imports import import_ratings
    from resources.object_store import ObjectStoreResource

    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    path = tmp_path / "ratings.dat"
    path.write_text("1::10::5::978300760\n1::11::3::978302109\n2::10::x::1\n")
    first = import_ratings(path, store, namespace="ml")
    assert (first["rows"], first["bad_lines"], first["users"]) == (2, 1, 1)
    again = import_ratings(path, store, namespace="ml")
    other = tmp_path / "u.data"
    other.write_text("7\t10\t4\t100\n")
    import_ratings(other, store, namespace="ml100k")
    rows = DeltaTable(again["uri"]).to_pyarrow_table().to_pylist()
    assert sorted((r["source"], r["user_id"], r["title_id"], r["weight"]) for r in rows) == [
        ("ml", "ml:1", "ml:10", 1.0),
        ("ml", "ml:1", "ml:11", 0.6),
        ("ml100k", "ml100k:7", "ml100k:10", 0.8),
    ]
    reasons = json.loads(store.get_bytes("quarantine/ratings/ml.json"))["bad_lines"]
    assert reasons[0]["line"] == 3


def test_mmr_trades_relevance_for_diversity() -> None:
    from netflix_assets.recs.mmr import mmr

    # Five near-copies of one direction score highest; five spread-out items score a bit less.
    copies = np.array([[1.0, 0.01 * i, 0.0] for i in range(5)])
    spread = np.array(
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [-1, 0, 0]]
    )
    embeddings = np.vstack([copies, spread])
    scores = np.array([1.0, 0.99, 0.98, 0.97, 0.96, 0.9, 0.89, 0.88, 0.87, 0.86])
    plain = mmr(scores, embeddings, 5, lam=1.0)
    assert plain == [0, 1, 2, 3, 4]
    diverse = mmr(scores, embeddings, 5, lam=0.5)
    assert len(set(diverse)) == 5 and diverse[0] == 0
    assert sum(i >= 5 for i in diverse) >= 3  # mostly the spread-out items after the best copy

    def mean_similarity(picks: list[int]) -> float:
        unit = embeddings[picks] / np.linalg.norm(embeddings[picks], axis=1, keepdims=True)
        sims = unit @ unit.T
        return float((sims.sum() - len(picks)) / (len(picks) * (len(picks) - 1)))

    assert mean_similarity(diverse) < mean_similarity(plain)
    with pytest.raises(ValueError, match="lam"):
        mmr(scores, embeddings, 3, lam=1.5)


def test_ranker_learns_a_planted_signal(tmp_path) -> None:
    from netflix_assets.recs import ranker

    rng = np.random.default_rng(0)
    rows = []
    for user in range(200):
        for cand in range(30):
            completion = rng.random()
            popularity = rng.random()
            # Relevance follows completion rate; the ALS score here is pure noise.
            label = 2 if completion > 0.8 else (1 if completion > 0.6 else 0)
            rows.append(
                {
                    "group": user,
                    "als_score": rng.random(),
                    "candidate_rank": cand + 1,
                    "t_interactions_28d": popularity,
                    "t_trend": 1.0,
                    "t_completion_rate": completion,
                    "t_mean_weight": 0.5,
                    "t_popularity_rank": 1.0,
                    "u_interactions_28d": 5.0,
                    "u_mean_weight": 0.5,
                    "u_days_since_last": 1.0,
                    "u_completion_rate": 0.5,
                    "label": label,
                }
            )
    frame = pd.DataFrame(rows)
    train, test = frame[frame.group < 150], frame[frame.group >= 150]
    booster = ranker.train(train, rounds=30)
    path = ranker.save(booster, tmp_path / "ranker.txt")
    scores = ranker.predict(ranker.load(path), test)

    def top1_relevance(order_scores: np.ndarray) -> float:
        picked = test.assign(s=order_scores).sort_values(["group", "s"], ascending=[True, False])
        return float(picked.groupby("group").head(1)["label"].mean())

    assert top1_relevance(scores) > top1_relevance(test["als_score"].to_numpy()) + 0.8
    with pytest.raises(ValueError, match="contiguous"):
        ranker.train(pd.concat([train.head(3), train.iloc[40:43], train.iloc[3:6]]), rounds=1)


def test_candidates_are_the_exact_top_n_unseen() -> None:
    from netflix_assets.recs.two_stage import candidates

    rng = np.random.default_rng(4)
    title_factors = rng.normal(size=(5000, 8)).astype(np.float32)
    title_factors[100:140] = title_factors[7]  # 41 titles tied with title 7
    user = title_factors[7].copy()
    seen = np.array([7, 120, 4999, 120])
    got, scores = candidates(user, title_factors, seen, 60)

    expected_scores = title_factors @ user
    expected_scores[seen] = -np.inf
    order = np.lexsort((np.arange(5000), -expected_scores))[:60]  # by score, ties by index
    assert got.tolist() == order.tolist()
    assert np.array_equal(scores, expected_scores[order])
    assert not set(got.tolist()) & set(seen.tolist())
    # Asking for more than the unseen titles returns all of them.
    small = title_factors[:10]
    every, _ = candidates(small[0], small, np.array([0, 3]), 500)
    assert sorted(every.tolist()) == [1, 2, 4, 5, 6, 7, 8, 9]


def test_compiled_ranker_scores_like_lightgbm(monkeypatch) -> None:
    import lleaves

    from netflix_assets.recs import ranker

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.random((3000, len(ranker.FEATURES))), columns=list(ranker.FEATURES))
    frame["label"] = (frame["als_score"] + frame["t_trend"] > 1.1).astype(int)
    frame["group"] = np.repeat(np.arange(100), 30)
    booster = ranker.train(frame, rounds=40)

    scorer = ranker.compile_scorer(booster)
    assert scorer.engine == "lleaves"
    rows = rng.random((500, len(ranker.FEATURES))).astype(np.float32)
    expected = ranker.predict(booster, rows)
    assert np.allclose(scorer.score(rows), expected, rtol=1e-9, atol=1e-12)
    assert np.ptp(expected) > 0  # the rows reach different leaves

    # A compiler that gets one leaf wrong is refused, not served.
    real = lleaves.Model.predict

    def off_by_a_little(self, data, n_jobs=None):
        out = real(self, data, n_jobs)
        out[3] += 1e-3
        return out

    monkeypatch.setattr(lleaves.Model, "predict", off_by_a_little)
    with pytest.raises(ValueError, match="compiled ranker differs from LightGBM on probe row 3"):
        ranker.compile_scorer(booster)
