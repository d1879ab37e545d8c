"""Synthetic ratings with planted tastes, in MovieLens format, for the demo and the benchmarks.

MovieLens itself may not be redistributed, so the demo writes a file of the same shape: users
belong to one of `clusters` tastes and mostly rate titles of their taste, titles have a quality
that makes some more popular than others, and the ratings spread over `days` days. A model that
learns tastes beats popularity on it; one that does not, does not.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd


def ratings(
    users: int = 600,
    titles: int = 300,
    per_user: int = 30,
    clusters: int = 8,
    days: int = 60,
    end: date | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """(user_id, title_id, rating, ts) with integer ids, like u.data; `ts` in Unix seconds."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).date()
    start = datetime.combine(end - timedelta(days=days), time(), tzinfo=UTC).timestamp()
    quality = rng.pareto(1.5, titles) + 0.1
    title_cluster = rng.integers(0, clusters, titles)
    per_user = min(per_user, titles)
    frames = []
    for cluster in range(clusters):
        members = np.flatnonzero(np.arange(users) % clusters == cluster)
        if members.size == 0:
            continue
        # 85% of the weight on the user's taste, the rest on everything, both by quality.
        weight = quality * np.where(
            title_cluster == cluster, 0.85 / max(1, (title_cluster == cluster).sum()), 0.15 / titles
        )
        p = weight / weight.sum()
        for u in members:
            picked = rng.choice(titles, size=per_user, replace=False, p=p)
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": u,
                        "title_id": picked,
                        "rating": rng.integers(3, 6, per_user),
                        "ts": (start + rng.random(per_user) * days * 86_400).astype(np.int64),
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
