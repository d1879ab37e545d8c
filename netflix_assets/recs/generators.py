"""Candidate generators: the models that score every title for a user.

- ALS (als.py): a user vector times the title factors; needs the user in the model.
- EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): a title x title weight matrix B,
  closed form B = I - P diag(1 / diag(P)), P = (X^T X + lambda I)^-1, with diag(B) = 0; a user's
  scores are the sum of B's rows for the titles they interacted with.
- RP3beta (Paudel et al. 2017, "Updatable, accurate, diverse, and scalable recommendations"):
  a random walk user -> title -> user -> title with transition probabilities raised to alpha,
  each target divided by its popularity to the power beta; also a title x title matrix.

Both item-item models are stored as a sparse matrix pruned to each title's `neighbours`
largest weights, and scored from the titles the user has seen, so the service needs only the
user's seen set (which it reads from Redis anyway) and a user the model never saw still gets
personal scores. Indices in, indices out, numpy/scipy only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack
from scipy.sparse import csr_matrix, diags, vstack

# EASE inverts a titles x titles matrix: O(titles^3) time, titles^2 memory. Only this many of
# the most popular titles are modelled (the rest are too rarely seen to matter at K=10, and ALS
# still scores them in a blend): 8,000 titles are a 512 MB float64 Gram matrix, inverted in
# tens of seconds on one core, where ML-25M's 59,047 would take 28 GB and hours.
EASE_MAX_TITLES = 8_000
GENERATOR_NAMES = ("als", "ease", "rp3b", "blend")
DENSE_SUM_RATIO = 8
"""nonzero_scores sums over the whole catalogue when it has at most this many titles per entry
to sum (else it sorts the entries): a served request (20 watched titles x 200 neighbours over
100k titles) sorts, as before; a user of the evaluation who has seen 100 of 1,600 titles sums."""


@dataclass(frozen=True)
class ItemItem:
    """A pruned titles x titles weight matrix: scores(seen) = sum of the seen titles' rows."""

    kind: str
    weights: csr_matrix  # float32

    def scores(self, seen: np.ndarray) -> np.ndarray:
        """Scores of every title for one user from the indices of their seen titles."""
        at = self._entries(seen)
        w = self.weights
        return np.bincount(w.indices[at], weights=w.data[at], minlength=w.shape[1]).astype(
            np.float32
        )

    def nonzero_scores(self, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(titles, float64 scores): the titles some seen title points to, ascending, and their
        scores; every other title scores 0. The same sums as `scores`, without a pass over the
        catalogue."""
        at = self._entries(seen)
        n = self.weights.shape[1]
        if n <= DENSE_SUM_RATIO * len(at):
            # Many entries over a small catalogue (the evaluation's users, who have seen
            # hundreds of titles): one pass over the catalogue costs less than sorting the
            # entries. The weights are positive, so a title is nonzero exactly when some seen
            # title points to it, and the sums are added in the same order either way.
            sums = np.bincount(self.weights.indices[at], weights=self.weights.data[at], minlength=n)
            titles = np.flatnonzero(sums)
            return titles, sums[titles]
        titles, where = np.unique(self.weights.indices[at], return_inverse=True)
        return titles, np.bincount(where, weights=self.weights.data[at], minlength=len(titles))

    def _entries(self, seen: np.ndarray) -> np.ndarray:
        """Positions in the CSR arrays of the seen titles' rows, gathered in one step (no
        per-row slicing): position j of row r is starts[r] + j, i.e. a running index shifted
        by each row's offset."""
        w = self.weights
        starts, ends = w.indptr[seen], w.indptr[seen + 1]
        lengths = ends - starts
        shift = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        return np.arange(int(lengths.sum())) + shift

    def batch_scores(self, history: csr_matrix) -> np.ndarray:
        """users x titles scores from a binary users x titles history matrix."""
        return np.asarray((history @ self.weights).todense(), dtype=np.float32)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        w = self.weights
        np.savez(
            buffer,
            kind=np.array(self.kind),
            shape=np.array(w.shape),
            indptr=w.indptr,
            indices=w.indices,
            data=w.data,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ItemItem:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            shape = tuple(int(x) for x in z["shape"])
            weights = csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
            return cls(str(z["kind"]), weights)


def binary(matrix: csr_matrix) -> csr_matrix:
    """The users x titles 0/1 matrix of a weighted one."""
    out = matrix.copy().tocsr()
    out.data = np.ones_like(out.data, dtype=np.float64)
    return out


PRUNE_ROWS = 2048  # rows pruned at a time: the partition's index array is rows x titles


def prune(dense: np.ndarray, neighbours: int) -> csr_matrix:
    """Each row's `neighbours` largest weights (positive ones only), as a float32 CSR."""
    blocks = [
        _prune_rows(dense[lo : lo + PRUNE_ROWS], neighbours)
        for lo in range(0, dense.shape[0], PRUNE_ROWS)
    ]
    if not blocks:
        return csr_matrix(dense.shape, dtype=np.float32)
    return vstack(blocks).tocsr()


def _prune_rows(dense: np.ndarray, neighbours: int) -> csr_matrix:
    n = dense.shape[0]
    k = min(neighbours, dense.shape[1])
    top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(dense, top, axis=1)
    keep = values > 0
    rows = np.repeat(np.arange(n), k)[keep.ravel()]
    return csr_matrix(
        (values[keep].astype(np.float32), (rows, top[keep])), shape=dense.shape
    ).tocsr()


def _spd_inverse(gram: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix by Cholesky (LAPACK potrf/potri,
    about half the work of a general inverse), overwriting `gram`."""
    factor, info = lapack.dpotrf(gram.T, lower=False, clean=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"the EASE Gram matrix is not positive definite ({info})")
    inv, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"the EASE Gram matrix is singular ({info})")
    # potri fills the upper triangle only; mirror it a block at a time (no n^2 index arrays).
    n = inv.shape[0]
    for lo in range(0, n, 1024):
        hi = min(lo + 1024, n)
        inv[lo:hi, :lo] = inv[:lo, lo:hi].T
        square = inv[lo:hi, lo:hi]
        square[np.tril_indices(hi - lo, -1)] = square.T[np.tril_indices(hi - lo, -1)]
    return inv


def fit_ease(history: csr_matrix, lam: float = 200.0, neighbours: int = 200) -> ItemItem:
    """EASE on a binary users x titles matrix; titles beyond EASE_MAX_TITLES (least popular
    first) get no weights."""
    counts = np.asarray(history.sum(axis=0)).ravel()
    n = history.shape[1]
    kept = np.sort(np.argsort(-counts, kind="stable")[:EASE_MAX_TITLES])
    x = history[:, kept]
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += lam
    b = _spd_inverse(gram)
    b /= -np.diag(b).copy()[None, :]
    b[np.diag_indices_from(b)] = 0.0
    pruned = prune(b, neighbours).tocoo()
    full = csr_matrix(
        (pruned.data, (kept[pruned.row], kept[pruned.col])), shape=(n, n), dtype=np.float32
    )
    return ItemItem("ease", full)


def fit_rp3b(
    history: csr_matrix, alpha: float = 1.0, beta: float = 0.5, neighbours: int = 200
) -> ItemItem:
    """RP3beta: W = (P_iu P_ui)^alpha / popularity^beta, row-pruned."""
    x = binary(history)
    user_deg = np.asarray(x.sum(axis=1)).ravel()
    item_deg = np.asarray(x.sum(axis=0)).ravel()
    p_ui = diags(1.0 / np.maximum(user_deg, 1)) @ x  # user -> title
    p_iu = diags(1.0 / np.maximum(item_deg, 1)) @ x.T.tocsr()  # title -> user
    if alpha != 1.0:
        p_ui = p_ui.power(alpha)
        p_iu = p_iu.power(alpha)
    divisor = np.power(np.maximum(item_deg, 1), beta)[None, :]
    blocks = []
    for lo in range(0, x.shape[1], 1024):  # a block of rows at a time: never titles^2 dense
        w = (p_iu[lo : lo + 1024] @ p_ui).toarray() / divisor
        w[np.arange(w.shape[0]), np.arange(lo, lo + w.shape[0])] = 0.0
        blocks.append(prune(w, neighbours))
    return ItemItem("rp3b", vstack(blocks).tocsr())


def standardized(scores: np.ndarray) -> np.ndarray:
    """Each row to mean 0 and standard deviation 1, so two models' scores can be added."""
    scores = np.asarray(scores, dtype=np.float64)
    std = scores.std(axis=-1, keepdims=True)
    return (scores - scores.mean(axis=-1, keepdims=True)) / np.where(std > 0, std, 1.0)


@dataclass(frozen=True)
class FactorMoments:
    """The first two moments of the title factors, so the mean and standard deviation of one
    user's ALS scores over every title (u . t for each title t) cost O(f^2) instead of two
    passes over the catalogue: mean = u . E[t], variance = u^T E[t t^T] u - mean^2."""

    mean: np.ndarray  # (f,) float64
    second: np.ndarray  # (f, f) float64

    @classmethod
    def of(cls, title_factors: np.ndarray) -> FactorMoments:
        t = np.asarray(title_factors, dtype=np.float64)
        n = max(len(t), 1)
        return cls(t.sum(axis=0) / n, (t.T @ t) / n)

    def mean_std(self, user_factor: np.ndarray) -> tuple[float, float]:
        u = np.asarray(user_factor, dtype=np.float64)
        mean = float(self.mean @ u)
        return mean, float(np.sqrt(max(float(u @ self.second @ u) - mean * mean, 0.0)))


def _blend(
    als_scores: np.ndarray,
    user_factor: np.ndarray,
    moments: FactorMoments,
    item_item: ItemItem,
    seen: np.ndarray,
    weight: float,
) -> np.ndarray:
    """(1 - weight) x standardized ALS + weight x standardized item-item scores, without a
    dense pass per model: the ALS statistics come from the factor moments, and the item-item
    scores are zero outside the few titles near the seen ones (their statistics and the
    correction are computed on those only). Per request this is the matrix-vector product and
    two in-place float32 passes, instead of six float64 passes over the catalogue."""
    n = len(als_scores)
    a_mean, a_std = moments.mean_std(user_factor)
    a_std = a_std if a_std > 0 else 1.0
    near, values = item_item.nonzero_scores(seen)
    i_mean = float(values.sum()) / n
    i_std = float(np.sqrt(max(float(values @ values) / n - i_mean * i_mean, 0.0)))
    i_std = i_std if i_std > 0 else 1.0
    out = np.asarray(als_scores, dtype=np.float32)
    out *= np.float32((1.0 - weight) / a_std)
    out += np.float32(-(1.0 - weight) * a_mean / a_std - weight * i_mean / i_std)
    out[near] += (weight / i_std * values).astype(np.float32)
    return out


def user_scores(
    generator: str,
    user_factor: np.ndarray | None,
    title_factors: np.ndarray,
    item_item: ItemItem | None,
    seen: np.ndarray,
    blend_weight: float = 0.5,
    moments: FactorMoments | None = None,
) -> np.ndarray | None:
    """One user's score of every title by the named generator ("als", "ease", "rp3b" or
    "blend" of ALS and an item-item model), or None when it has nothing personal to say (a user
    ALS never saw, or no seen title for an item-item model). The service and the evaluation
    both score through here. `moments` (FactorMoments of `title_factors`) is computed when not
    given; a caller scoring many users passes it once made."""
    if generator not in GENERATOR_NAMES:
        raise ValueError(f"unknown candidate generator {generator!r}; expected {GENERATOR_NAMES}")
    has_items = item_item is not None and seen.size > 0
    if generator in ("ease", "rp3b"):
        return item_item.scores(seen) if has_items else None
    als_scores = None if user_factor is None else title_factors @ user_factor
    if generator == "als" or not has_items:
        return als_scores
    if als_scores is None:
        return item_item.scores(seen)
    moments = moments or FactorMoments.of(title_factors)
    return _blend(als_scores, user_factor, moments, item_item, seen, blend_weight)
