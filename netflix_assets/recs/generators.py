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
from scipy.sparse import csr_matrix, diags, vstack

# EASE inverts a titles x titles matrix: O(titles^3) time, titles^2 memory. Beyond this many
# titles only the most popular are modelled (the rest are too rarely seen to matter at K=10).
EASE_MAX_TITLES = 20_000


@dataclass(frozen=True)
class ItemItem:
    """A pruned titles x titles weight matrix: scores(seen) = sum of the seen titles' rows."""

    kind: str
    weights: csr_matrix  # float32

    def scores(self, seen: np.ndarray) -> np.ndarray:
        """Scores of every title for one user from the indices of their seen titles."""
        w = self.weights
        starts, ends = w.indptr[seen], w.indptr[seen + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(w.shape[1], dtype=np.float32)
        # The seen rows' entries gathered in one step (no per-row slicing): position j of row
        # r is starts[r] + j, i.e. a running index shifted by each row's offset.
        shift = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        at = np.arange(total) + shift
        return np.bincount(w.indices[at], weights=w.data[at], minlength=w.shape[1]).astype(
            np.float32
        )

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


def prune(dense: np.ndarray, neighbours: int) -> csr_matrix:
    """Each row's `neighbours` largest weights (positive ones only), as a float32 CSR."""
    n = dense.shape[0]
    k = min(neighbours, dense.shape[1])
    top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(dense, top, axis=1)
    keep = values > 0
    rows = np.repeat(np.arange(n), k)[keep.ravel()]
    return csr_matrix(
        (values[keep].astype(np.float32), (rows, top[keep])), shape=dense.shape
    ).tocsr()


def fit_ease(history: csr_matrix, lam: float = 200.0, neighbours: int = 200) -> ItemItem:
    """EASE on a binary users x titles matrix; titles beyond EASE_MAX_TITLES (least popular
    first) get no weights."""
    counts = np.asarray(history.sum(axis=0)).ravel()
    n = history.shape[1]
    kept = np.sort(np.argsort(-counts, kind="stable")[:EASE_MAX_TITLES])
    x = history[:, kept]
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = p / (-np.diag(p))[None, :]
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


def user_scores(
    generator: str,
    user_factor: np.ndarray | None,
    title_factors: np.ndarray,
    item_item: ItemItem | None,
    seen: np.ndarray,
    blend_weight: float = 0.5,
) -> np.ndarray | None:
    """One user's score of every title by the named generator ("als", "ease", "rp3b" or
    "blend" of ALS and an item-item model), or None when it has nothing personal to say (a user
    ALS never saw, or no seen title for an item-item model). The service and the evaluation
    both score through here."""
    als_scores = None if user_factor is None else title_factors @ user_factor
    items = None if item_item is None or seen.size == 0 else item_item.scores(seen)
    if generator == "als":
        return als_scores
    if generator in ("ease", "rp3b"):
        return items
    if generator == "blend":
        if als_scores is None or items is None:
            return items if als_scores is None else als_scores
        mixed = (1.0 - blend_weight) * standardized(als_scores) + blend_weight * standardized(items)
        return mixed.astype(np.float32)
    raise ValueError(f"unknown candidate generator {generator!r}")
