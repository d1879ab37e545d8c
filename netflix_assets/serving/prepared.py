"""A release prepared for serving: one directory of plain arrays and a compiled ranker, made by a
separate process, that the serving process opens in milliseconds.

Why a separate process: turning a release into servable form (reading 1M users' ids and
factors, sorting them, compiling the ranker with LLVM and checking it against LightGBM) is about
a second of CPU, much of it holding the GIL. Done inside the server, it stalled the requests in
flight during a swap (the benchmark's swap window reached 213 ms). `prepare` runs in
`python -m netflix_assets.serving.prepared` at the lowest CPU priority; the server then only
memory-maps the large arrays and loads the machine code, checking it against the probe scores
LightGBM produced at preparation.

Layout of one prepared release, `<root>/<key>/`:

    release.json          version, as_of, online_prefix, ranker engine
    user_ids.npy          sorted fixed-width ids (memory-mapped by the server)
    user_factors.npy      float32 rows aligned with user_ids (memory-mapped)
    title_ids.npy, title_factors.npy, title_features.npy, popular.npy
    ranker.txt            the LightGBM model
    ranker.o              the forest compiled by lleaves (absent when lleaves is not installed)
    probe_rows.npy, probe_scores.npy

A directory is written under a temporary name and renamed into place only when complete, so a
preparation killed half-way leaves nothing that can be opened; the next attempt starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import lightgbm as lgb
import numpy as np

from netflix_assets.recs import ranker
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.two_stage import TitleTable
from netflix_assets.serving.bundle import Bundle, Manifest
from resources.object_store import ObjectStoreResource

MAPPED = ("user_ids", "user_factors")
"""The arrays that scale with users: memory-mapped, so opening a release reads none of them."""


def key(version: str, manifest: Manifest, store: ObjectStoreResource) -> str:
    """The directory name of a release: a digest of its version and where its files are, so two
    stores that both hold a "v1" never share a prepared directory."""
    where = [store.uri(manifest[k]) for k in ("als_key", "ranker_key", "titles_key")]
    blob = json.dumps([version, sorted(manifest.items()), where])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _sorted(ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """ids sorted (the server finds a row by binary search), their rows, and the permutation
    (None when they were sorted already, as fit_als writes them)."""
    ids = ids.astype(str)
    if ids.size < 2 or bool(np.all(ids[:-1] < ids[1:])):
        return ids, rows, None
    order = np.argsort(ids, kind="stable")
    return ids[order], rows[order], order


def _write(out: Path, version: str, manifest: Manifest, store: ObjectStoreResource) -> None:
    als = AlsModel.from_bytes(store.get_bytes(manifest["als_key"]))
    model_text = store.get_bytes(manifest["ranker_key"]).decode()
    titles = TitleTable.from_bytes(store.get_bytes(manifest["titles_key"]))
    if titles.features.shape[0] != len(als.titles):
        raise ValueError(
            f"release {version}: the title table has {titles.features.shape[0]} rows but the "
            f"ALS model has {len(als.titles)} titles; they come from different dates"
        )
    users, user_factors, _ = _sorted(als.users, als.user_factors)
    title_ids, title_factors, order = _sorted(als.titles, als.title_factors)
    features, popular = titles.features, titles.popular
    if order is not None:
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        features, popular = features[order], inverse[popular]
    arrays = {
        "user_ids": users,
        "user_factors": np.ascontiguousarray(user_factors, dtype=np.float32),
        "title_ids": title_ids,
        "title_factors": np.ascontiguousarray(title_factors, dtype=np.float32),
        "title_features": np.ascontiguousarray(features, dtype=np.float32),
        "popular": np.asarray(popular, dtype=np.int64),
    }
    for name, array in arrays.items():
        np.save(out / f"{name}.npy", array, allow_pickle=False)
    (out / "ranker.txt").write_text(model_text)
    booster = lgb.Booster(model_str=model_text)
    probe = ranker.Probe.of(booster)
    np.save(out / "probe_rows.npy", probe.rows)
    np.save(out / "probe_scores.npy", probe.scores)
    engine = ranker.compile_scorer(booster, out / "ranker.o", probe).engine
    meta = {
        "version": version,
        "as_of": manifest.get("as_of", ""),
        "online_prefix": manifest.get("online_prefix", "feat:v1"),
        "engine": engine,
    }
    (out / "release.json").write_text(json.dumps(meta))


def prepare(version: str, manifest: Manifest, store: ObjectStoreResource, root: Path) -> Path:
    """The prepared directory of a release under `root`, made now unless it exists already (a
    restarted server reuses it). Raises with the cause when the release cannot be served."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / key(version, manifest, store)
    if (final / "release.json").exists():
        return final
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    try:
        _write(scratch, version, manifest, store)
        try:
            scratch.rename(final)
        except OSError:
            if not (final / "release.json").exists():  # not a concurrent twin: a real failure
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final


def open_bundle(path: Path) -> Bundle:
    """A Bundle over a prepared directory: the user arrays memory-mapped, the small ones read,
    the ranker loaded from its machine code and re-checked against LightGBM's probe scores."""
    meta = json.loads((path / "release.json").read_text())

    def array(name: str) -> np.ndarray:
        return np.load(path / f"{name}.npy", mmap_mode="r" if name in MAPPED else None)

    probe = ranker.Probe(array("probe_rows"), array("probe_scores"))
    if meta["engine"] == "lleaves":
        scorer = ranker.open_compiled(path / "ranker.txt", path / "ranker.o", probe)
    else:
        scorer = ranker.lightgbm_scorer(lgb.Booster(model_file=str(path / "ranker.txt")))
    return Bundle(
        version=meta["version"],
        as_of=meta["as_of"],
        online_prefix=meta["online_prefix"],
        user_ids=array("user_ids"),
        title_ids=array("title_ids"),
        user_factors=array("user_factors"),
        title_factors=array("title_factors"),
        titles=TitleTable(array("title_features"), array("popular")),
        scorer=scorer,
    )


def load(version: str, manifest: Manifest, store: ObjectStoreResource, root: Path) -> Bundle:
    """Prepare in this process and open: for tools and benchmarks, not for a serving process."""
    return open_bundle(prepare(version, manifest, store, root))


CHILD = [sys.executable, "-m", __name__]
"""The command that prepares one release; it reads `child_request` on stdin, prints the path."""


def child_request(version: str, manifest: Manifest, store: ObjectStoreResource, root: Path) -> str:
    return json.dumps(
        {"version": version, "manifest": manifest, "store": store.model_dump(), "root": str(root)}
    )


def prepare_elsewhere(
    version: str,
    manifest: Manifest,
    store: ObjectStoreResource,
    root: Path,
    timeout: float = 600.0,
) -> Path:
    """`prepare` in a child process at the lowest CPU priority, so the calling server's GIL and
    cores stay with its requests. A child that fails, crashes or runs out of memory raises here
    with its last error line; the caller keeps serving what it has."""
    try:
        done = subprocess.run(
            CHILD,
            input=child_request(version, manifest, store, root),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"preparing release {version} took over {timeout:.0f} s") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        cause = lines[-1] if lines else f"killed by signal {-done.returncode}"
        raise RuntimeError(f"preparing release {version} failed (exit {done.returncode}): {cause}")
    return Path(done.stdout.strip().splitlines()[-1])


def prune(root: Path, keep: set[Path]) -> None:
    """Remove prepared releases other than `keep` (the server's current one), and scratch left
    by a preparation that was killed. An old bundle still mapped keeps working: unlinking a
    mapped file does not unmap it."""
    if not root.exists():
        return
    keep = {p.resolve() for p in keep}
    for entry in root.iterdir():
        if entry.resolve() not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def _main() -> None:
    os.nice(19)
    request = json.load(sys.stdin)
    store = ObjectStoreResource(**request["store"])
    path = prepare(request["version"], request["manifest"], store, Path(request["root"]))
    print(path)


if __name__ == "__main__":
    try:
        _main()
    except Exception as exc:  # one clear line for the server's log; the traceback is noise there
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
