"""Deterministic assignment: a stable hash of (salt, profile id) picks the variant.

The hash is BLAKE2b over UTF-8 text, so the same profile gets the same variant in every process,
language and release (Python's own ``hash`` is salted per process and cannot be used). Two hashes
are taken: one keyed by the *layer* decides whether the profile falls in the experiment's traffic
slice, one keyed by the experiment's *salt* picks the variant, so experiments in different layers
are assigned independently and a slice change does not reshuffle the variants.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Iterable

import numpy as np

from netflix_assets.experiments.definitions import Experiment

_SCALE = float(2**64)


def unit_hash(key: str, profile_id: str) -> float:
    """A uniform number in [0, 1) fixed by the key and the profile id."""
    digest = hashlib.blake2b(f"{key}\x1f{profile_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def assign(experiment: Experiment, profile_id: str) -> str | None:
    """The profile's variant, or None when the profile is outside the experiment's traffic."""
    u_layer = unit_hash(f"layer:{experiment.layer}", profile_id)
    if not (experiment.traffic_start <= u_layer < experiment.traffic_end):
        return None
    u = unit_hash(f"salt:{experiment.salt}", profile_id)
    bounds = list(itertools.accumulate(v.share for v in experiment.variants))
    index = min(bisect.bisect_right(bounds, u), len(bounds) - 1)  # guards float rounding at 1.0
    return experiment.variants[index].name


def assign_many(experiment: Experiment, profile_ids: Iterable[str]) -> np.ndarray:
    """Vector form of `assign` (object array; None outside the traffic slice)."""
    return np.array([assign(experiment, p) for p in profile_ids], dtype=object)
