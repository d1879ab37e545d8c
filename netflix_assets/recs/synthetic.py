"""Synthetic ratings with planted tastes, in MovieLens format, for the demo and the benchmarks.

MovieLens itself may not be redistributed, so the demo writes a file of the same shape: users
belong to one of `clusters` tastes and mostly start titles of their taste, titles have a quality
that makes some more popular than others, and the ratings spread over `days` days. Titles come
in franchises (a series' seasons, a film and its sequels) that a viewer watches in order, so
what a viewer takes up next is often the next entry of a franchise they are in. A model that
learns tastes beats popularity on it; one that also learns which title follows which (an
item-to-item model, a blend) beats a few taste factors too, as on real viewing data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd


def ratings(
    users: int = 1200,
    titles: int = 300,
    per_user: int = 30,
    clusters: int = 8,
    franchise: int = 4,
    days: int = 60,
    end: date | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """(user_id, title_id, rating, ts) with integer ids, like u.data; `ts` in Unix seconds.

    Titles t .. t + franchise - 1 (t a multiple of `franchise`) are one franchise of one taste.
    Each user picks franchises by quality, 85% of the weight on its taste, and watches each
    from its first entry for 1 to `franchise` entries, one after another in time, until it has
    `per_user` titles."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).date()
    start = datetime.combine(end - timedelta(days=days), time(), tzinfo=UTC).timestamp()
    franchises = -(-titles // franchise)
    quality = rng.pareto(1.5, franchises) + 0.1
    taste = rng.integers(0, clusters, franchises)
    per_user = min(per_user, titles)
    frames = []
    for u in range(users):
        cluster = u % clusters
        mine = taste == cluster
        weight = quality * np.where(mine, 0.85 / max(1, mine.sum()), 0.15 / franchises)
        order = rng.choice(franchises, size=franchises, replace=False, p=weight / weight.sum())
        watched: list[int] = []
        for f in order:
            entries = np.arange(f * franchise, min((f + 1) * franchise, titles))
            watched.extend(entries[: rng.integers(1, len(entries) + 1)].tolist())
            if len(watched) >= per_user:
                break
        picked = np.array(watched[:per_user])
        frames.append(
            pd.DataFrame(
                {
                    "user_id": u,
                    "title_id": picked,
                    "rating": rng.integers(3, 6, len(picked)),
                    "ts": np.sort(start + rng.random(len(picked)) * days * 86_400).astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_dat(frame: pd.DataFrame, path: str | Path) -> Path:
    """ratings.dat layout: user::title::rating::timestamp."""
    path = Path(path)
    lines = (
        frame["user_id"].astype(str)
        + "::"
        + frame["title_id"].astype(str)
        + "::"
        + frame["rating"].astype(str)
        + "::"
        + frame["ts"].astype(str)
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def _activity(
    rng: np.random.Generator,
    users: int,
    titles: int,
    interactions: int,
    min_per_user: int,
    start: float,
    stop: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratings, first rating time, active span) per user: log-normal activity of at least
    `min_per_user` ratings summing to about `interactions`, first ratings over the period."""
    mean = max(interactions / users - min_per_user, 1.0)
    activity = min_per_user + rng.lognormal(np.log(mean) - 0.5, 1.0, users)
    activity *= interactions / activity.sum()
    count = np.clip(np.round(activity), min_per_user, titles // 2).astype(np.int64)
    first = start + rng.random(users) * (stop - start) * 0.9
    span = np.minimum(stop - first, rng.lognormal(np.log(120 * 86_400), 1.2, users))
    return count, first, span


def movielens_like(
    users: int = 943,
    titles: int = 1682,
    interactions: int = 100_000,
    dims: int = 12,
    taste: float = 2.0,
    min_per_user: int = 20,
    days: int = 7 * 365,
    end: date | None = None,
    seed: int = 0,
    half_stars: bool = False,
) -> pd.DataFrame:
    """Synthetic ratings shaped like MovieLens (`user_id, title_id, rating, ts`, integer ids).

    Not MovieLens: generated, with the properties that make real data harder than planted
    clusters. Titles have a long-tail popularity (log-normal, a few titles take most ratings)
    and a release date spread over the period; users have a log-normal activity (at least
    `min_per_user`, like MovieLens' 20) and an active span; tastes are `dims`-dimensional
    (a user is a mix of genres, not one cluster), scaled by `taste` against popularity. A
    user's titles are drawn without replacement by popularity x taste x availability during the
    span (a title cannot be rated before its release, and is mostly rated soon after it: the
    temporal drift that leave-latest-out rewards). Ratings 1-5 follow taste and title quality;
    with `half_stars`, 0.5-5 in steps of 0.5 as ML-20M/25M's (the same draws otherwise).
    """
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).date()
    stop = datetime.combine(end, time(), tzinfo=UTC).timestamp()
    start = stop - days * 86_400
    genre = rng.dirichlet(np.full(dims, 0.3), titles)  # titles: mostly one or two genres
    liking = rng.dirichlet(np.full(dims, 0.5), users)  # users: a mix of several
    popularity = rng.lognormal(0.0, 1.4, titles)
    quality = rng.normal(0.0, 0.5, titles)
    release = start + rng.beta(1.3, 1.0, titles) * (stop - start) * 0.95
    release[rng.random(titles) < 0.3] = start  # the back catalogue exists from the start
    count, first, span = _activity(rng, users, titles, interactions, min_per_user, start, stop)
    frames = []
    for lo in range(0, users, 256):
        hi = min(lo + 256, users)
        affinity = liking[lo:hi] @ genre.T * dims  # ~1 on average, high on shared genres
        leave = first[lo:hi, None] + span[lo:hi, None]
        available = np.clip((leave - release[None, :]) / np.maximum(span[lo:hi, None], 1), 0, 1)
        log_w = (
            np.log(popularity)[None, :] + taste * np.log(affinity + 1e-3) + np.log(available + 1e-9)
        )
        keys = log_w + rng.gumbel(size=log_w.shape)  # Gumbel top-k: weighted, no replacement
        for row, user in enumerate(range(lo, hi)):
            n = int(count[user])
            picked = np.argpartition(-keys[row], n - 1)[:n]
            opens = np.maximum(first[user], release[picked])
            close = first[user] + span[user]
            # Mostly soon after a title becomes available to the user: recency drives views.
            when = opens + rng.beta(1.0, 3.0, n) * np.maximum(close - opens, 60.0)
            score = 3.2 + 0.9 * np.tanh(affinity[row, picked] - 1.0) + quality[picked]
            noisy = score + rng.normal(0, 0.8, n)
            if half_stars:
                stars = np.clip(np.round(noisy * 2) / 2, 0.5, 5.0)
            else:
                stars = np.clip(np.round(noisy), 1, 5).astype(np.int64)
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": user + 1,
                        "title_id": picked + 1,
                        "rating": stars,
                        "ts": np.minimum(when, stop - 1).astype(np.int64),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def sampled_ratings(
    users: int,
    titles: int,
    interactions: int,
    dims: int = 12,
    min_per_user: int = 20,
    days: int = 7 * 365,
    end: date | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """MovieLens-shaped ratings at any size, in time linear in the interactions (movielens_like
    scores every title for every user, 10^10 draws at ML-25M's shape): log-normal title
    popularity and user activity as there, one genre a title, a mix of genres a user; each
    rating draws a genre from the user's mix, then a title of it by popularity (with
    replacement; repeats dropped, so fewer than `interactions` come out). Timestamps over
    each user's active span, ratings 0.5-5 in half stars. For time and memory at 10M-25M rows,
    not for quality figures (no temporal drift, no release dates)."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).date()
    stop = datetime.combine(end, time(), tzinfo=UTC).timestamp()
    start = stop - days * 86_400
    genre = rng.integers(0, dims, titles)
    popularity = rng.lognormal(0.0, 1.4, titles)
    quality = rng.normal(0.0, 0.5, titles)
    liking = rng.dirichlet(np.full(dims, 0.5), users)
    count, first, span = _activity(rng, users, titles, interactions, min_per_user, start, stop)
    # Titles grouped by genre, one running sum of popularity: a genre is a range of it.
    order = np.argsort(genre, kind="stable")
    running = np.cumsum(popularity[order])
    bounds = np.searchsorted(genre[order], np.arange(dims + 1))
    low = np.where(bounds[:-1] > 0, running[np.maximum(bounds[:-1] - 1, 0)], 0.0)
    high = running[np.maximum(bounds[1:] - 1, 0)]
    taste = np.cumsum(liking, axis=1)
    frames = []
    block = max(1, 2_000_000 // max(int(count.mean()), 1))
    for lo in range(0, users, block):
        hi = min(lo + block, users)
        who = np.repeat(np.arange(lo, hi), count[lo:hi])
        g = (rng.random(len(who))[:, None] > taste[who]).sum(axis=1).clip(0, dims - 1)
        picked = order[
            np.searchsorted(running, low[g] + rng.random(len(who)) * (high[g] - low[g]))
        ].clip(0, titles - 1)
        keys = np.unique(who.astype(np.int64) * titles + picked)
        who, picked = keys // titles, keys % titles
        when = first[who] + rng.beta(1.0, 3.0, len(who)) * np.maximum(span[who], 60.0)
        noisy = 3.5 + quality[picked] + rng.normal(0, 0.9, len(who))
        frames.append(
            pd.DataFrame(
                {
                    "user_id": who + 1,
                    "title_id": picked + 1,
                    "rating": np.clip(np.round(noisy * 2) / 2, 0.5, 5.0),
                    "ts": np.minimum(when, stop - 1).astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_csv(frame: pd.DataFrame, path: str | Path, chunk: int = 1_000_000) -> Path:
    """ratings.csv layout (ML-20M/25M): a `userId,movieId,rating,timestamp` header, then one
    comma-separated line per rating, ratings with one decimal (`4.0`, `3.5`); written a chunk of
    rows at a time."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("userId,movieId,rating,timestamp\n")
        for lo in range(0, len(frame), chunk):
            part = frame.iloc[lo : lo + chunk]
            out = pd.DataFrame(
                {
                    "userId": part["user_id"],
                    "movieId": part["title_id"],
                    "rating": part["rating"].astype(np.float64),
                    "timestamp": part["ts"],
                }
            )
            out.to_csv(handle, header=False, index=False, lineterminator="\n", float_format="%.1f")
    return path
