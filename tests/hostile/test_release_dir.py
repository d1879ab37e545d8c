"""`serve --release-dir DIR` with a folder that holds other things: the server prunes only the
releases it prepared itself (it used to remove every subfolder, so `--release-dir ~` wiped a
home folder)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from netflix_assets.recs import ranker
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.two_stage import TitleTable
from netflix_assets.serving import bundle, prepared
from netflix_assets.serving.store import ModelStore
from resources.object_store import ObjectStoreResource

N_USERS, N_TITLES, DIM = 20, 30, 4


def write_release(store: ObjectStoreResource, manifest_path: Path, version: str) -> None:
    """A small real release (ALS factors, a LightGBM ranker, the title table) and its manifest."""
    rng = np.random.default_rng(7)
    model = AlsModel(
        np.array([f"u{i}" for i in range(N_USERS)]),
        np.array([f"t{i}" for i in range(N_TITLES)]),
        rng.normal(size=(N_USERS, DIM)).astype(np.float32),
        rng.normal(size=(N_TITLES, DIM)).astype(np.float32),
    )
    frame = pd.DataFrame(rng.random((200, len(ranker.FEATURES))), columns=list(ranker.FEATURES))
    frame["label"] = (frame["als_score"] > 0.7).astype(int)
    frame["group"] = np.repeat(np.arange(20), 10)
    feats = pd.DataFrame({"title_id": model.titles, "t_interactions_28d": np.arange(N_TITLES)})
    for column in ranker.TITLE_FEATURES[1:]:
        feats[column] = 0.0
    base = f"models/{version}"
    store.put_bytes(model.to_bytes(), f"{base}/als.npz")
    booster = ranker.train(frame, rounds=3, seed=1)
    store.put_bytes(booster.model_to_string().encode(), f"{base}/ranker.txt")
    store.put_bytes(TitleTable.build(model.titles, feats).to_bytes(), f"{base}/titles.npz")
    manifest = {
        "version": version,
        "as_of": "2026-11-10",
        "als_key": f"{base}/als.npz",
        "ranker_key": f"{base}/ranker.txt",
        "titles_key": f"{base}/titles.npz",
        "online_prefix": "feat:v1",
    }
    manifest_path.write_text(json.dumps(manifest))


def test_release_dir_keeps_what_the_server_did_not_make(tmp_path: Path) -> None:
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    home = tmp_path / "home"  # what `--release-dir ~` points at
    (home / "photos").mkdir(parents=True)
    (home / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("secret")
    (home / "notes.txt").write_text("keep me")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.csv").write_text("a,b\n")
    os.symlink(elsewhere, home / "link-to-elsewhere")
    before = sorted(p.relative_to(home).as_posix() for p in home.rglob("*"))

    manifest = tmp_path / "release.json"
    models = ModelStore(
        bundle.manifest_file_source(manifest), store, home, prepare=prepared.prepare
    )
    write_release(store, manifest, "v1")
    assert models.refresh() and models.current.version == "v1"
    write_release(store, manifest, "v2")
    assert models.refresh() and models.current.version == "v2"

    releases = [p for p in home.iterdir() if (p / prepared.MARKER).is_file()]
    assert len(releases) == 1, "v1's prepared directory was not pruned"
    assert json.loads((releases[0] / "release.json").read_text())["version"] == "v2"
    after = sorted(
        p.relative_to(home).as_posix() for p in home.rglob("*") if not p.is_relative_to(releases[0])
    )
    assert after == before  # every file and folder the user had is still there
    assert (home / "photos" / "cat.jpg").read_bytes() == b"\xff\xd8 a cat"
    assert (elsewhere / "data.csv").read_text() == "a,b\n"


def test_prune_removes_only_marked_directories(tmp_path: Path) -> None:
    root = tmp_path / "releases"
    root.mkdir()
    ours, old, theirs = root / "abc", root / ".abc-killed", root / "theirs"
    for folder in (ours, old, theirs):
        folder.mkdir()
    (ours / prepared.MARKER).write_text("")
    (old / prepared.MARKER).write_text("")
    (theirs / "file").write_text("x")
    prepared.prune(root, keep={ours})
    assert sorted(p.name for p in root.iterdir()) == ["abc", "theirs"]


def test_prune_removes_scratch_killed_before_its_marker(tmp_path: Path) -> None:
    """A kill between `mkdtemp` and the marker's write leaves an empty scratch directory; it
    goes, while a folder of that name holding anything, or of another name, stays."""
    root = tmp_path / "releases"
    root.mkdir()
    killed = Path(tempfile.mkdtemp(prefix=f".{'0123456789abcdef0123'}-", dir=root))
    lookalike = root / ".0123456789abcdef0123-abcdefgh"
    lookalike.mkdir()
    (lookalike / "notes.txt").write_text("mine")
    other_empty = root / ".cache"
    other_empty.mkdir()
    prepared.prune(root, keep=set())
    assert not killed.exists()
    assert (lookalike / "notes.txt").read_text() == "mine"
    assert other_empty.is_dir()
