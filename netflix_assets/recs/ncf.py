"""Neural collaborative filtering (NeuMF, He et al. 2017) in PyTorch, as a second candidate scorer.

NeuMF joins a generalized matrix factorization branch (element-wise product of user and title
embeddings) and an MLP branch (concatenated embeddings through ReLU layers) in one logistic
output. It learns from implicit feedback: every distinct (user, title) pair is a positive, and
each epoch draws `negatives` titles per positive uniformly from the titles that user never
touched, as in the paper. Indices in, indices out: ids are mapped by the caller (training.py).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class NcfConfig:
    dim: int = 16  # GMF embedding size
    layers: tuple[int, ...] = (64, 32, 16)  # MLP widths; the first is both embeddings together
    negatives: int = 4
    epochs: int = 8
    batch_size: int | None = None  # None: samples / 60, within 256..8192 (see batch_size_for)
    lr: float = 3e-2
    weight_decay: float = 1e-6


class NeuMF(nn.Module):
    def __init__(self, n_users: int, n_titles: int, config: NcfConfig) -> None:
        super().__init__()
        half = config.layers[0] // 2
        self.gmf_user = nn.Embedding(n_users, config.dim)
        self.gmf_title = nn.Embedding(n_titles, config.dim)
        self.mlp_user = nn.Embedding(n_users, half)
        self.mlp_title = nn.Embedding(n_titles, half)
        layers: list[nn.Module] = []
        for width_in, width_out in zip(config.layers, config.layers[1:], strict=False):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(config.dim + config.layers[-1], 1)
        for embedding in (self.gmf_user, self.gmf_title, self.mlp_user, self.mlp_title):
            nn.init.normal_(embedding.weight, std=0.01)

    def forward(self, users: torch.Tensor, titles: torch.Tensor) -> torch.Tensor:
        gmf = self.gmf_user(users) * self.gmf_title(titles)
        mlp = self.mlp(torch.cat([self.mlp_user(users), self.mlp_title(titles)], dim=-1))
        return self.out(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)


def _negatives(
    users: np.ndarray, positive_keys: np.ndarray, n_titles: int, rng: np.random.Generator
) -> np.ndarray:
    """One uniformly drawn title per entry of `users` that the user has no interaction with.

    Collisions with positives are redrawn until none is left (few rounds: the matrix is sparse).
    """
    titles = rng.integers(0, n_titles, size=len(users))
    for _ in range(50):
        clash = np.isin(users.astype(np.int64) * n_titles + titles, positive_keys)
        if not clash.any():
            break
        titles[clash] = rng.integers(0, n_titles, size=int(clash.sum()))
    return titles


def batch_size_for(samples: int, config: NcfConfig) -> int:
    """About 60 optimizer steps an epoch (8,192 a batch from 100k ratings up), with Adam's
    step at 3e-2: at 100k, 8 such epochs scored HR@10 0.165 / NDCG@10 0.096 in a quarter of the
    CPU of 10 epochs of 1,000-sample batches at 5e-3 (0.165 / 0.094; docs/RECS.md). Small
    batches spend an epoch's time in per-step overhead, not in arithmetic."""
    if config.batch_size is not None:
        return config.batch_size
    return int(min(8192, max(256, samples // 60)))


def fit(
    users: np.ndarray,
    titles: np.ndarray,
    n_users: int,
    n_titles: int,
    config: NcfConfig = NcfConfig(),
    seed: int = 0,
) -> NeuMF:
    """Train NeuMF on the distinct (user, title) index pairs with sampled negatives.

    On one thread: a step's tensors are too small to split, and torch's worker threads spin
    while they wait, so on a busy 2-core host the default two threads cost an epoch of 100k
    ratings 65 s of CPU (399 s wall) against 2.4 to 4.4 s (22 to 45 s) on one, same minutes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(users, titles, n_users, n_titles, config, seed)
    finally:
        torch.set_num_threads(threads)


def _fit(
    users: np.ndarray,
    titles: np.ndarray,
    n_users: int,
    n_titles: int,
    config: NcfConfig,
    seed: int,
) -> NeuMF:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    keys = np.unique(users.astype(np.int64) * n_titles + titles)
    pos_users, pos_titles = keys // n_titles, keys % n_titles
    model = NeuMF(n_users, n_titles, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(config.epochs):
        neg_users = np.repeat(pos_users, config.negatives)
        neg_titles = _negatives(neg_users, keys, n_titles, rng)
        u = torch.from_numpy(np.concatenate([pos_users, neg_users]))
        t = torch.from_numpy(np.concatenate([pos_titles, neg_titles]))
        y = torch.cat([torch.ones(len(pos_users)), torch.zeros(len(neg_users))])
        order = torch.from_numpy(rng.permutation(len(y)))
        size = batch_size_for(len(y), config)
        for start in range(0, len(y), size):
            batch = order[start : start + size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(u[batch], t[batch]), y[batch])
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def scorer(model: NeuMF):
    """score(user_index, title_indices) -> logits, for evaluation.py."""

    def score(user: int, items: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(np.asarray(items, dtype=np.int64))
            u = torch.full_like(t, user)
            return model(u, t).numpy()

    return score


def to_bytes(model: NeuMF, users: list[str], titles: list[str], config: NcfConfig) -> bytes:
    """One file: weights, the id order they index and the shape, loadable with weights_only."""
    buffer = io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "users": list(users),
            "titles": list(titles),
            "config": {**asdict(config), "layers": list(config.layers)},
        },
        buffer,
    )
    return buffer.getvalue()


def from_bytes(data: bytes) -> tuple[NeuMF, list[str], list[str]]:
    saved = torch.load(io.BytesIO(data), weights_only=True)
    raw = saved["config"]
    config = NcfConfig(**{**raw, "layers": tuple(raw["layers"])})
    model = NeuMF(len(saved["users"]), len(saved["titles"]), config)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, saved["users"], saved["titles"]
