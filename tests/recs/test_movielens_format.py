"""A public-format ratings file end to end, without Spark: a MovieLens-shaped `ratings.csv`
(userId,movieId,rating,timestamp; long-tailed popularity and activity, half-star ratings,
timestamps over years) written by a helper -> import_ratings (what `netflix-assets
import-ratings` runs) -> the imported Delta table read back as the training frame -> the
release's own tuning, evaluation (leave-latest-out, full ranking) and blocking checks. Plus the
streaming reader: its fast path reads exactly what the line-by-line path reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from netflix_assets.recs import ratings, selection, synthetic, training, two_stage
from netflix_assets.recs.imports import import_ratings
from resources.object_store import ObjectStoreResource

SHAPE = {"users": 943, "titles": 1682, "interactions": 100_000, "seed": 1}


def write_movielens_csv(path, **shape) -> pd.DataFrame:
    """The helper: a MovieLens-format ratings.csv like ML-20M/25M's (header, half stars)."""
    raw = synthetic.movielens_like(**shape, half_stars=True)
    synthetic.write_csv(raw, path)
    return raw


def imported_frame(path, store: ObjectStoreResource, namespace: str) -> pd.DataFrame:
    """The file through import_ratings, read back from the Delta table in the columns
    training_interactions gives the models (user_id, title_id, ts, weight)."""
    summary = import_ratings(path, store, namespace=namespace)
    table = DeltaTable(summary["uri"]).to_pandas(filters=[("source", "=", namespace)])
    frame = table[["user_id", "title_id", "ts", "weight"]].reset_index(drop=True)
    frame["ts"] = frame["ts"].dt.tz_localize(None)
    return frame


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("movielens")
    path = root / "ratings.csv"
    raw = write_movielens_csv(path, **SHAPE)
    frame = imported_frame(path, ObjectStoreResource(root=str(root / "objects")), "mlcsv")
    chosen = selection.select(frame)
    return raw, frame, chosen


def test_the_file_has_the_public_format(release, tmp_path) -> None:
    raw, frame, _ = release
    path = tmp_path / "ratings.csv"
    synthetic.write_csv(raw.head(3), path)
    lines = path.read_text().splitlines()
    assert lines[0] == "userId,movieId,rating,timestamp"
    assert all(len(line.split(",")) == 4 and "." in line.split(",")[2] for line in lines[1:])
    stars = set(raw["rating"].unique())
    assert stars <= set(np.arange(1, 11) / 2) and {0.5, 4.5, 5.0} <= stars
    per_title = raw.groupby("title_id").size().sort_values(ascending=False)
    assert per_title.iloc[: len(per_title) // 10].sum() > 0.3 * len(raw)  # long tail
    per_user = raw.groupby("user_id").size()
    assert per_user.min() >= 20 and per_user.max() > 3 * per_user.median()
    assert len(frame) == len(raw) and frame["user_id"].str.startswith("mlcsv:").all()
    assert frame["weight"].between(0.1, 1.0).all()


def test_the_served_path_beats_tuned_als_on_the_imported_file(release) -> None:
    _, frame, chosen = release
    lam = selection.choose_mmr_lambda(chosen)
    pipeline = two_stage.Pipeline(chosen.generator, use_ranker=False, mmr_lambda=lam)
    report = training.evaluate_release(frame, chosen, pipeline)
    checks = selection.release_checks(report, tolerance=0.1)
    served, als = report["served"], report["als"]
    assert checks["served_beats_tuned_als"].passed, (served, als)
    assert served["hr@10"] > als["hr@10"] and served["ndcg@10"] > als["ndcg@10"]
    assert all(check.passed for check in checks.values()), checks
    assert report["sizes"]["users_held_out"] == SHAPE["users"]  # every user, full ranking


def test_the_blocking_check_refuses_a_release_built_to_lose(release) -> None:
    """The same data and tuning, but MMR at lambda 0 (the list spread over the embedding space
    with no regard for relevance after its first title): it loses to tuned ALS, and the
    release's check says so."""
    _, frame, chosen = release
    losing = two_stage.Pipeline(chosen.generator, use_ranker=False, mmr_lambda=0.0)
    report = training.evaluate_release(frame, chosen, losing)
    checks = selection.release_checks(report, tolerance=0.1)
    assert report["served"]["ndcg@10"] < report["als"]["ndcg@10"]
    assert not checks["served_beats_tuned_als"].passed
    assert not checks["served_near_best_single_model"].passed
    assert checks["served_beats_tuned_als"].metadata["als"]["hr@10"] > 0


def _lines(rng: np.random.Generator, n: int, separator: str) -> list[str]:
    users, titles = rng.integers(1, 60, n), rng.integers(1, 300, n)
    stars, stamps = rng.integers(1, 11, n) / 2, rng.integers(800_000_000, 1_700_000_000, n)
    return [
        f"{u}{separator}{t}{separator}{r}{separator}{s}"
        for u, t, r, s in zip(users, titles, stars, stamps, strict=True)
    ]


@pytest.mark.parametrize("separator", [",", "::", "\t"])
def test_the_fast_reader_reads_what_the_line_by_line_reader_reads(
    tmp_path, monkeypatch, separator
) -> None:
    rng = np.random.default_rng(3)
    lines = _lines(rng, 400, separator)
    # Bad and odd lines in some chunks only: those chunks go line by line, the others fast.
    lines[57] = "1" + separator + "2"
    lines[130] = ""
    lines[131] = f"7{separator}x{separator}nan{separator}5"
    lines[260] = f" 9{separator}10{separator}4{separator}100"
    lines[261] = f"NA{separator}10{separator}4{separator}100"
    header = ["userId,movieId,rating,timestamp"] if separator == "," else []
    path = tmp_path / "ratings.txt"
    path.write_text("\n".join(header + lines) + "\n")
    monkeypatch.setattr(ratings, "CHUNK_LINES", 50)
    fast, fast_bad = ratings.read_ratings(path, namespace="ns")
    calls = []
    monkeypatch.setattr(ratings, "_fast_chunk", lambda *args: calls.append(1))
    slow, slow_bad = ratings.read_ratings(path, namespace="ns")
    assert len(calls) > 5  # the second read went line by line everywhere
    pd.testing.assert_frame_equal(fast, slow)
    assert [(b.line, b.reason) for b in fast_bad] == [(b.line, b.reason) for b in slow_bad]
    offset = len(header) + 1
    assert [b.line for b in fast_bad] == [57 + offset, 131 + offset]
    assert list(fast["user_id"].cat.categories[:3]) == list(slow["user_id"].cat.categories[:3])
    assert "ns: 9" not in set(fast["user_id"]) and "ns:9" in set(fast["user_id"])
    assert "ns:NA" in set(fast["user_id"])  # an id, not a missing value
