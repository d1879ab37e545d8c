"""Implicit-feedback matrix factorization (ALS), the candidate generator.

Hu, Koren and Volinsky (2008): every (user, title) pair has a preference p = 1 if the user
interacted with the title, else 0, trusted with confidence c = 1 + alpha * weight. Alternating
least squares solves the users with the titles fixed and back; the Y^T Y trick keeps each solve
to the user's own titles, so one sweep costs O(interactions * f^2 + users * f^3).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix


@dataclass(frozen=True)
class AlsModel:
    users: np.ndarray
    titles: np.ndarray
    user_factors: np.ndarray
    title_factors: np.ndarray

    def to_bytes(self) -> bytes:
        """One .npz file: ids and factors together, so they can never drift apart. Uncompressed:
        random-looking floats barely compress, and a loader that inflates 128 MB in one call
        holds the GIL long enough to stall a serving process mid-swap."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            users=self.users,
            titles=self.titles,
            user_factors=self.user_factors,
            title_factors=self.title_factors,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AlsModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(z["users"], z["titles"], z["user_factors"], z["title_factors"])


def confidence_matrix(
    users: np.ndarray, titles: np.ndarray, weights: np.ndarray, n_users: int, n_titles: int
) -> csr_matrix:
    """Sparse users x titles matrix of summed interaction weights."""
    return csr_matrix(
        (weights.astype(np.float64), (users, titles)), shape=(n_users, n_titles)
    ).tocsr()


BLOCK_BYTES = 256 * 2**20  # the rows x f x f systems of one batched solve


def _sweep(fixed: np.ndarray, matrix: csr_matrix, alpha: float, reg: float) -> np.ndarray:
    """Solve every row at once, a block of rows at a time: the per-row Gram corrections
    V^T C V are one sparse product with the titles' outer products, and the f x f systems are
    solved by one batched LAPACK call instead of a Python loop per row. The Gram matrices are
    symmetric, so only their upper triangles (f(f+1)/2 of f^2 entries) are multiplied out:
    the sparse product, most of a sweep, costs about half."""
    f = fixed.shape[1]
    base = fixed.T @ fixed + reg * np.eye(f)
    row, col = np.triu_indices(f)
    outer = fixed[:, row] * fixed[:, col]
    conf = matrix.copy()
    conf.data = alpha * conf.data
    ones = matrix.copy()
    ones.data = np.ones_like(ones.data)
    out = np.zeros((matrix.shape[0], f))
    block = max(1, BLOCK_BYTES // (8 * f * f))
    for lo in range(0, matrix.shape[0], block):
        rows = slice(lo, lo + block)
        packed = conf[rows] @ outer
        a = np.empty((packed.shape[0], f, f))
        a[:, row, col] = packed
        a[:, col, row] = packed
        a += base
        b = (ones[rows] + conf[rows]) @ fixed
        active = np.diff(matrix.indptr[lo : lo + block + 1]) > 0
        out[lo : lo + len(a)][active] = np.linalg.solve(a[active], b[active][:, :, None])[..., 0]
    return out


def fit(
    matrix: csr_matrix,
    factors: int = 32,
    alpha: float = 20.0,
    reg: float = 0.1,
    iterations: int = 10,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(user_factors, title_factors) as float32 arrays."""
    rng = np.random.default_rng(seed)
    users = rng.normal(0, 0.01, (matrix.shape[0], factors))
    titles = rng.normal(0, 0.01, (matrix.shape[1], factors))
    transposed = matrix.T.tocsr()
    for _ in range(iterations):
        users = _sweep(titles, matrix, alpha, reg)
        titles = _sweep(users, transposed, alpha, reg)
    return users.astype(np.float32), titles.astype(np.float32)


def recommend(
    user_factors: np.ndarray, title_factors: np.ndarray, user: int, n: int, exclude=()
) -> np.ndarray:
    """Top-n title indices for a user by dot product, never one in `exclude`."""
    scores = title_factors @ user_factors[user]
    excluded = np.fromiter(exclude, dtype=np.int64)
    if excluded.size:
        scores[excluded] = -np.inf
    n = min(n, int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.argsort(-scores[top], kind="stable")]
