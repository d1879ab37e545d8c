"""The per-request shortcuts of the served path give the same answers as the plain computation:
the sampled top-n threshold, the blend's standardization from factor moments, and the smaller
candidate pool when no ranker reorders them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from netflix_assets.recs import generators, two_stage
from netflix_assets.recs.generators import FactorMoments, ItemItem


def exact_top(scores: np.ndarray, seen: np.ndarray, n: int) -> np.ndarray:
    """The n best unseen titles by score, ties by title index, by a full sort."""
    scores = scores.astype(np.float64)
    scores[seen] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))
    return order[: min(n, len(scores) - len(np.unique(seen)))]


@pytest.mark.parametrize(
    "shape",
    ["normal", "ties", "ascending", "descending", "few distinct", "small catalogue"],
)
@pytest.mark.parametrize("n", [1, 10, 100, 500])
def test_top_unseen_is_the_exact_top_whatever_the_scores_look_like(shape, n) -> None:
    rng = np.random.default_rng(n)
    size = 300 if shape == "small catalogue" else 100_000
    scores = {
        "normal": rng.normal(size=size),
        "ties": np.round(rng.normal(size=size), 1),  # thousands of titles share each value
        "ascending": np.arange(size, dtype=np.float64),  # the strided sample misses the top
        "descending": -np.arange(size, dtype=np.float64),
        "few distinct": rng.integers(0, 3, size).astype(np.float64),
        "small catalogue": rng.normal(size=size),
    }[shape].astype(np.float32)
    seen = rng.integers(0, size, 40)
    got, got_scores = two_stage.top_unseen(scores.copy(), seen, n)
    expected = exact_top(scores, seen, n)
    assert got.tolist() == expected.tolist()
    assert np.array_equal(got_scores, scores[expected])


def test_the_sample_guessing_too_high_falls_back_to_the_whole_catalogue() -> None:
    """Every 64th score is the largest: the sample's threshold lets too few titles through, and
    the answer must still be exact."""
    scores = np.zeros(64_000, dtype=np.float32)
    scores[::64] = 1.0 + np.arange(1000, dtype=np.float32)
    got, _ = two_stage.top_unseen(scores.copy(), np.empty(0, dtype=np.int64), 2000)
    assert got.tolist() == exact_top(scores, np.empty(0, dtype=np.int64), 2000).tolist()


def test_factor_moments_give_the_mean_and_deviation_of_every_title_score() -> None:
    rng = np.random.default_rng(1)
    titles = rng.normal(0.2, 0.5, (20_000, 32)).astype(np.float32)
    moments = FactorMoments.of(titles)
    for _ in range(5):
        user = rng.normal(0, 1, 32).astype(np.float32)
        scores = (titles @ user).astype(np.float64)
        mean, std = moments.mean_std(user)
        assert mean == pytest.approx(scores.mean(), rel=1e-6, abs=1e-9)
        assert std == pytest.approx(scores.std(), rel=1e-6)


def item_item(titles: int, rng: np.random.Generator) -> ItemItem:
    cols = rng.integers(0, titles, (titles, 30))
    data = rng.random((titles, 30)).astype(np.float32)
    indptr = np.arange(0, titles * 30 + 1, 30)
    return ItemItem("ease", csr_matrix((data.ravel(), cols.ravel(), indptr), (titles, titles)))


@pytest.mark.parametrize("weight", [0.25, 0.5, 0.75])
def test_the_blend_equals_the_mix_of_standardized_scores(weight) -> None:
    rng = np.random.default_rng(2)
    titles = rng.normal(0, 0.3, (5_000, 16)).astype(np.float32)
    items = item_item(5_000, rng)
    moments = FactorMoments.of(titles)
    for _ in range(5):
        user = rng.normal(0, 1, 16).astype(np.float32)
        seen = rng.integers(0, 5_000, 25)
        got = generators.user_scores("blend", user, titles, items, seen, weight, moments)
        plain = (1 - weight) * generators.standardized(titles @ user) + weight * (
            generators.standardized(items.scores(seen))
        )
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, plain, rtol=1e-4, atol=1e-4)
        # Without moments it computes them: the same scores.
        again = generators.user_scores("blend", user, titles, items, seen, weight)
        np.testing.assert_array_equal(got, again)


def test_a_blend_with_nothing_to_standardize_does_not_divide_by_zero() -> None:
    titles = np.ones((100, 4), dtype=np.float32)  # every ALS score the same: std 0
    items = ItemItem("ease", csr_matrix((100, 100), dtype=np.float32))  # no neighbours at all
    got = generators.user_scores("blend", np.ones(4, np.float32), titles, items, np.array([3]))
    assert np.all(np.isfinite(got)) and np.all(got == got[0])


def test_an_unknown_generator_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown candidate generator 'knn'"):
        generators.user_scores("knn", None, np.ones((3, 2)), None, np.array([0]))


@pytest.mark.parametrize("lam", [1.0, 0.6])
def test_without_the_ranker_the_smaller_candidate_pool_serves_the_same_list(lam) -> None:
    """Without a ranker only the best `pool` candidates (or the best k) can reach the list, so
    asking the catalogue for fewer changes nothing."""
    rng = np.random.default_rng(3)
    titles = rng.normal(size=(30_000, 8)).astype(np.float32)
    full = two_stage.Pipeline("als", use_ranker=False, mmr_lambda=lam)
    for _ in range(5):
        scores = titles @ rng.normal(size=8).astype(np.float32)
        seen = rng.integers(0, 30_000, 10)
        got = two_stage.serve_list(scores.copy(), seen, 20, full, None, None, None, titles)
        cand, cand_scores = two_stage.top_unseen(scores.copy(), seen, full.n_candidates)
        if lam >= 1.0:
            expected = cand[:20]
        else:
            expected, _ = two_stage.diversify(
                cand, cand_scores.astype(np.float64), titles, 20, full.pool, lam
            )
        assert got[0].tolist() == expected.tolist()


def test_nonzero_item_scores_are_the_dense_scores_where_they_are_not_zero() -> None:
    rng = np.random.default_rng(4)
    items = item_item(2_000, rng)
    for seen in (rng.integers(0, 2_000, 30), np.array([5, 5, 7]), np.empty(0, dtype=np.int64)):
        dense = items.scores(seen)
        titles, values = items.nonzero_scores(seen)
        assert titles.tolist() == np.flatnonzero(dense).tolist()
        assert np.array_equal(values.astype(np.float32), dense[titles])


def test_ncf_trains_on_one_thread_and_gives_the_threads_back() -> None:
    import torch

    from netflix_assets.recs import ncf

    seen: list[int] = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    original = ncf._fit

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    try:
        ncf._fit = spy
        users, titles = np.array([0, 0, 1, 2]), np.array([0, 1, 2, 3])
        ncf.fit(users, titles, 3, 5, ncf.NcfConfig(epochs=1))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        ncf._fit = original
        torch.set_num_threads(before)


def test_nonzero_scores_are_the_same_whether_summed_densely_or_by_sorting(monkeypatch) -> None:
    rng = np.random.default_rng(8)
    items = item_item(3_000, rng)
    for seen in (rng.integers(0, 3_000, 200), rng.integers(0, 3_000, 3), np.array([9, 9])):
        monkeypatch.setattr(generators, "DENSE_SUM_RATIO", 0)  # always sort
        by_sorting = items.nonzero_scores(seen)
        monkeypatch.setattr(generators, "DENSE_SUM_RATIO", 10**9)  # always sum densely
        densely = items.nonzero_scores(seen)
        assert np.array_equal(by_sorting[0], densely[0])
        assert np.array_equal(by_sorting[1], densely[1])  # same sums, same order of adding
