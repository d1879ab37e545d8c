"""Candidate generators (EASE, RP3beta, blends), validation tuning, and the served pipeline
scored through the service's own code; on small synthetic MovieLens-shaped data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from netflix_assets.recs import als, generators, ranker, selection, synthetic, two_stage
from netflix_assets.recs.evaluation import leave_latest_out
from netflix_assets.serving import recommender
from netflix_assets.serving.bundle import Bundle


def small_frame(seed: int = 0) -> pd.DataFrame:
    raw = synthetic.movielens_like(users=200, titles=150, interactions=8_000, seed=seed)
    return pd.DataFrame(
        {
            "user_id": "u" + raw["user_id"].astype(str).str.zfill(4),
            "title_id": "t" + raw["title_id"].astype(str).str.zfill(4),
            "ts": raw["ts"],
            "weight": raw["rating"] / 5.0,
        }
    )


SMALL_GRIDS = {
    "als": [{"factors": 8, "alpha": 2.0, "reg": 10.0}],
    "ease": [{"lam": 50.0}, {"lam": 300.0}],
    "rp3b": [{"alpha": 1.0, "beta": 0.5}],
}


def test_movielens_like_has_the_shape_of_real_data() -> None:
    raw = synthetic.movielens_like(users=300, titles=400, interactions=20_000, seed=2)
    per_user = raw.groupby("user_id").size()
    per_title = raw.groupby("title_id").size().sort_values(ascending=False)
    assert per_user.min() >= 20 and per_user.max() > 3 * per_user.median()  # activity skew
    assert per_title.iloc[: len(per_title) // 10].sum() > 0.3 * len(raw)  # long tail
    assert set(raw["rating"].unique()) == {1, 2, 3, 4, 5}
    assert not raw.duplicated(["user_id", "title_id"]).any()


def test_ease_is_the_closed_form_ridge_regression_with_zero_diagonal() -> None:
    rng = np.random.default_rng(0)
    x = csr_matrix((rng.random((40, 12)) < 0.3).astype(float))
    lam = 5.0
    b = generators.fit_ease(x, lam, neighbours=12).weights.toarray()
    dense = x.toarray()
    for j in range(12):  # column j regressed on every other column, ridge lam
        others = [i for i in range(12) if i != j]
        a = dense[:, others]
        w = np.linalg.solve(a.T @ a + lam * np.eye(11), a.T @ dense[:, j])
        expected = np.zeros(12)
        expected[others] = w
        got = b[:, j]
        kept = got != 0  # pruning keeps positive weights only
        assert np.allclose(got[kept], expected[kept], atol=1e-5)
        assert got[j] == 0 and np.all(expected[kept] > 0)


def test_rp3b_is_the_three_step_walk_divided_by_popularity() -> None:
    x = csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=float))
    w = generators.fit_rp3b(x, alpha=1.0, beta=0.5, neighbours=3).weights.toarray()
    d = x.toarray()
    p_ui = d / d.sum(axis=1, keepdims=True)
    p_iu = d.T / d.sum(axis=0)[:, None]
    expected = (p_iu @ p_ui) / np.sqrt(d.sum(axis=0))[None, :]
    np.fill_diagonal(expected, 0)
    assert np.allclose(w, expected, atol=1e-6)


def test_item_item_scores_and_bytes_round_trip() -> None:
    rng = np.random.default_rng(1)
    w = csr_matrix(rng.random((30, 30)) * (rng.random((30, 30)) < 0.2), dtype=np.float32)
    model = generators.ItemItem("ease", w)
    seen = np.array([2, 5, 29])
    assert np.allclose(model.scores(seen), w[seen].toarray().sum(axis=0))
    assert not model.scores(np.empty(0, dtype=np.int64)).any()
    again = generators.ItemItem.from_bytes(model.to_bytes())
    assert again.kind == "ease" and (again.weights != w).nnz == 0


def test_batched_als_sweep_solves_each_row_exactly() -> None:
    rng = np.random.default_rng(2)
    matrix = csr_matrix(rng.random((50, 30)) * (rng.random((50, 30)) < 0.15))
    fixed = rng.normal(size=(30, 6))
    got = als._sweep(fixed, matrix, 10.0, 0.5)
    for row in range(50):
        idx = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
        if idx.size == 0:
            assert not got[row].any()
            continue
        conf = 10.0 * matrix.data[matrix.indptr[row] : matrix.indptr[row + 1]]
        v = fixed[idx]
        a = fixed.T @ fixed + v.T @ (conf[:, None] * v) + 0.5 * np.eye(6)
        assert np.allclose(got[row], np.linalg.solve(a, ((1 + conf)[:, None] * v).sum(0)))


def test_selection_never_looks_at_the_test_items() -> None:
    """Replacing every user's held-out (latest) title leaves tuning and choice unchanged."""
    frame = small_frame()
    chosen = selection.select(frame, SMALL_GRIDS)
    test = leave_latest_out(frame).test
    latest = frame.merge(test[["user_id", "ts", "title_id"]], how="left", indicator=True)
    changed = frame.copy()
    hit = (latest["_merge"] == "both").to_numpy()
    changed.loc[hit, "title_id"] = "t9999"  # a title nobody else has
    again = selection.select(changed, SMALL_GRIDS)

    def accuracy(result: selection.Selection) -> dict:
        # Coverage's denominator counts t9999, and a blend standardizes over one more title
        # (which can reorder ties, so diversity moves in the fourth digit): accuracy is exact.
        keep = ("params", "hr@10", "ndcg@10")
        return {n: [{k: r[k] for k in keep} for r in rs] for n, rs in result.tuning.items()}

    assert accuracy(again) == accuracy(chosen) and again.generator == chosen.generator
    assert set(chosen.tuning) == {"als", "ease", "rp3b", "blend"}
    best = max(max(r["ndcg@10"] for r in rs) for rs in chosen.tuning.values())
    assert max(r["ndcg@10"] for r in chosen.tuning[chosen.generator]) == best
    assert [c["lambda"] for c in chosen.mmr_curve] == list(selection.MMR_LAMBDAS)


@pytest.mark.parametrize("generator", ["als", "ease", "blend"])
def test_the_evaluation_scores_exactly_what_the_service_serves(generator) -> None:
    frame = small_frame(seed=3)
    split = leave_latest_out(frame)
    uidx, tidx, users, titles = selection.index_maps(frame)
    task = selection.Task.of(split, uidx, tidx, max_users=60)
    als_fit = selection.fit("als", SMALL_GRIDS["als"][0], task.weighted)
    ease_fit = selection.fit("ease", {"lam": 100.0}, task.weighted)
    model = {"als": als_fit, "ease": ease_fit, "blend": selection.blend(als_fit, ease_fit, 0.4)}
    pipeline = two_stage.Pipeline(generator, use_ranker=False, mmr_lambda=0.8, n_candidates=50)
    evaluated = selection.served_lists(model[generator], als_fit.factors[1], pipeline, task)
    u, t = als_fit.factors
    bundle = Bundle(
        version="v",
        as_of="2026-01-01",
        online_prefix="feat:v1",
        user_ids=np.array(users),
        title_ids=np.array(titles),
        user_factors=u,
        title_factors=t,
        titles=two_stage.TitleTable.build(np.array(titles), None),
        scorer=ranker.Scorer(lambda rows: pytest.fail("the ranker is off"), "none"),
        pipeline=pipeline,
        item_item=ease_fit.item_item,
        blend_weight=0.4,
    )
    for row, user in enumerate(task.users):
        seen = [titles[i] for i in task.seen(int(user))]
        served = recommender.recommend(bundle, users[user], None, seen, 10, n_candidates=50)
        assert [tidx[item.title_id] for item in served.items] == evaluated[row].tolist()


def test_release_report_covers_every_model_and_the_served_path() -> None:
    from netflix_assets.recs import training
    from netflix_assets.recs.ncf import NcfConfig

    frame = small_frame(seed=4)
    chosen = selection.select(frame, SMALL_GRIDS)
    pipeline = two_stage.Pipeline(chosen.generator, use_ranker=False, mmr_lambda=0.9)
    report = training.evaluate_release(frame, chosen, pipeline)
    neural = training.evaluate_ncf(frame, NcfConfig(epochs=2))
    report["ncf"] = neural.report
    for model in ("served", "als", "ease", "rp3b", "blend", "ncf", "popularity"):
        m = report[model]
        assert 0 <= m["ndcg@10"] <= m["hr@10"] <= 1 and 0 < m["coverage"] <= 1, model
        assert 0 <= m["ild"] <= 1, model
    assert report["popularity"]["coverage"] < report["ease"]["coverage"]
    assert report["served"]["hr@10"] > report["popularity"]["hr@10"]
    # NCF's file is the model scored: every user and title of the frame, in index order.
    assert neural.users == sorted(frame["user_id"].unique())
    assert neural.titles == sorted(frame["title_id"].unique())


def test_a_blend_is_evaluated_from_the_fitted_parts_not_refit() -> None:
    frame = small_frame(seed=6)
    chosen = selection.select(frame, SMALL_GRIDS)
    uidx, tidx, _, _ = selection.index_maps(frame)
    weighted = selection.weighted_matrix(frame, uidx, tidx)
    fitted = selection.fit_tuned(chosen.best, weighted)
    mixed = fitted["blend"]
    assert mixed.parts[0] is fitted["als"] and mixed.parts[1] is fitted[mixed.params["with"]]
    again = selection.fit("blend", chosen.best["blend"], weighted)
    users = np.arange(20)
    history = generators.binary(weighted)
    assert np.allclose(mixed.batch(users, history), again.batch(users, history))


def test_tuning_runs_on_whole_users_beyond_the_limit() -> None:
    frame = small_frame(seed=7)
    sample = selection.tuning_sample(frame, limit=3_000)
    assert len(sample) <= 3_000 and len(sample) > 2_000
    sizes = frame["user_id"].value_counts()
    kept = sample["user_id"].value_counts()
    assert (sizes[kept.index] == kept).all()  # every kept user with all their interactions
    assert selection.tuning_sample(frame, limit=len(frame)) is frame
    chosen = selection.select(frame, SMALL_GRIDS, max_interactions=3_000)
    assert chosen.sample["interactions"] == len(sample)
    assert chosen.sample["of_interactions"] == len(frame)
    assert selection.Selection.from_json(chosen.to_json()).sample == chosen.sample


def test_a_blend_release_prepares_and_serves_with_its_item_item_matrix(tmp_path) -> None:
    """The release format carries the pipeline and the item-item matrix, reordered with the
    titles when the ALS file's titles are not sorted."""
    from netflix_assets.recs.als import AlsModel
    from netflix_assets.serving import prepared
    from resources.object_store import ObjectStoreResource

    rng = np.random.default_rng(7)
    titles = np.array(["t3", "t1", "t2", "t0"])  # unsorted on purpose
    model = AlsModel(
        np.array(["u0", "u1"]),
        titles,
        rng.normal(size=(2, 4)).astype(np.float32),
        rng.normal(size=(4, 4)).astype(np.float32),
    )
    weights = csr_matrix(rng.random((4, 4)).astype(np.float32))
    rows = pd.DataFrame(rng.random((400, len(ranker.FEATURES))), columns=list(ranker.FEATURES))
    rows["label"] = (rows["als_score"] > 0.5).astype(int)
    rows["group"] = np.repeat(np.arange(40), 10)
    booster = ranker.train(rows, rounds=5)
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    files = {
        "als_key": ("r/als.npz", model.to_bytes()),
        "ranker_key": ("r/ranker.txt", booster.model_to_string().encode()),
        "titles_key": ("r/titles.npz", two_stage.TitleTable.build(titles, None).to_bytes()),
        "item_item_key": ("r/item_item.npz", generators.ItemItem("ease", weights).to_bytes()),
    }
    for key, data in files.values():
        store.put_bytes(data, key)
    manifest = {
        "as_of": "2026-11-10",
        "online_prefix": "feat:v1",
        **{name: key for name, (key, _) in files.items()},
        **two_stage.Pipeline("blend", use_ranker=False, mmr_lambda=0.6).to_manifest(),
        "blend_weight": "0.3",
    }
    bundle = prepared.load("v1", manifest, store, tmp_path / "releases")
    assert bundle.pipeline == two_stage.Pipeline("blend", use_ranker=False, mmr_lambda=0.6)
    assert bundle.blend_weight == 0.3 and list(bundle.title_ids) == ["t0", "t1", "t2", "t3"]
    old = {t: i for i, t in enumerate(titles)}
    for a in range(4):
        for b in range(4):
            got = bundle.item_item.weights[a, b]
            assert got == weights[old[bundle.title_ids[a]], old[bundle.title_ids[b]]]
    served = recommender.recommend(bundle, "u0", None, ["t1"], 2)
    assert len(served.items) == 2 and "t1" not in {i.title_id for i in served.items}
    # An unknown user with a watched title still gets personal (item-item) picks.
    assert not recommender.recommend(bundle, "nobody", None, ["t1"], 2).cold_start


def test_mmr_lambda_is_the_most_diverse_point_that_keeps_als_accuracy() -> None:
    chosen = selection.Selection(
        tuning={"als": [{"ndcg@10": 0.30}, {"ndcg@10": 0.35}], "ease": [{"ndcg@10": 0.37}]},
        generator="ease",
        mmr_curve=[
            {"lambda": 1.0, "ndcg@10": 0.37},
            {"lambda": 0.9, "ndcg@10": 0.365},
            {"lambda": 0.8, "ndcg@10": 0.355},
            {"lambda": 0.6, "ndcg@10": 0.34},
        ],
    )
    # ALS's 0.35 alone would allow 0.8; keeping 98 % of the generator's 0.37 allows only 0.9.
    assert selection.choose_mmr_lambda(chosen) == 0.9
    assert selection.choose_mmr_lambda(chosen, keep=0.9) == 0.8
    chosen.mmr_curve = [{"lambda": 1.0, "ndcg@10": 0.33}, {"lambda": 0.6, "ndcg@10": 0.30}]
    assert selection.choose_mmr_lambda(chosen) == 1.0


def test_sets_report_agrees_with_list_metrics_user_by_user() -> None:
    from netflix_assets.recs.evaluation import list_metrics, mean_metrics

    rng = np.random.default_rng(9)
    history = csr_matrix((rng.random((30, 40)) < 0.2).astype(np.float64))
    tops = np.array([rng.permutation(40)[:10] for _ in range(30)])
    tops[3, 7:] = -1  # a short list, as the served path pads them
    relevant = [rng.choice(40, size=rng.integers(1, 15), replace=False) for _ in range(30)]
    got = selection.sets_report(tops, relevant, history)
    expected = mean_metrics(
        [list_metrics(t, set(r.tolist())) for t, r in zip(tops, relevant, strict=True)]
    )
    for metric, value in expected.items():
        assert got[metric] == pytest.approx(value), metric


def test_the_temporal_protocol_scores_the_served_path_on_the_future_only() -> None:
    from netflix_assets.recs import training

    frame = small_frame(seed=5)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s")  # as training_interactions holds it
    chosen = selection.select(frame, SMALL_GRIDS)
    cutoff = training.choose_cutoff(frame, pd.to_datetime(frame["ts"]).max().date())
    pipeline = two_stage.Pipeline(chosen.generator, use_ranker=False, mmr_lambda=0.9)
    report = training.evaluate_temporal(frame, chosen, pipeline, cutoff)
    before, after = training.split_at(frame, cutoff)
    assert report["sizes"]["train_rows"] == len(before) and len(after) > 0
    for model in ("served", "als", "ease", "rp3b", "blend", "popularity"):
        m = report[model]
        assert 0 <= m["ndcg@10"] <= 1 and 0 <= m["recall@10"] <= m["hr@10"] <= 1, model
    assert report["served"]["hr@10"] > report["popularity"]["hr@10"]
    # Weighting the future differently changes nothing: only the interactions before the
    # cutoff are fit, and the future's titles (unchanged) are what is scored.
    heavier = frame.copy()
    heavier.loc[pd.to_datetime(heavier["ts"]) >= pd.Timestamp(cutoff), "weight"] *= 7.0
    assert training.evaluate_temporal(heavier, chosen, pipeline, cutoff) == report
    # With the ranker in the pipeline the served row says it was left out.
    with_ranker = two_stage.Pipeline(chosen.generator, use_ranker=True, mmr_lambda=0.9)
    assert "served_without_ranker" in training.evaluate_temporal(frame, chosen, with_ranker, cutoff)
