"""A release prepared for serving: one directory of plain arrays and a compiled ranker, made by a
separate process, that the serving process opens in milliseconds.

Why a separate process: turning a release into servable form (reading 1M users' ids and
factors, sorting them, compiling the ranker with LLVM and checking it against LightGBM) is about
a second of CPU, much of it holding the GIL. Done inside the server, it stalled the requests in
flight during a swap (the benchmark's swap window reached 213 ms). `prepare` runs in a child
process (`Preparer`) at the lowest CPU priority, paced; the server then only
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
    item_item_{indptr,indices,data}.npy   the EASE / RP3beta matrix in title_ids order, CSR
                          (only when the release's generator uses one)
    title_moment_{mean,second}.npy   the title factors' first two moments (with the
                          item-item matrix), so a blend standardizes ALS scores in O(f^2)

A directory is written under a temporary name and renamed into place only when complete, so a
preparation killed half-way leaves nothing that can be opened; the next attempt starts afresh.
Every directory this module makes holds a `MARKER` file once its first step (making it empty)
is done, and `prune` removes only marked directories, plus an empty directory named as scratch
(a kill between those two steps) through `rmdir`, which cannot remove anything holding a file:
the release folder is a command-line argument, and `--release-dir ~` must not cost anyone a
home folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import lightgbm as lgb
import numpy as np
from scipy.sparse import csr_matrix

from netflix_assets.clients.object_store import ObjectStore, ObjectStoreOps
from netflix_assets.recs import ranker
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.generators import FactorMoments, ItemItem
from netflix_assets.recs.two_stage import Pipeline, TitleTable
from netflix_assets.serving.bundle import Bundle, Manifest

MAPPED = ("user_ids", "user_factors")
"""The arrays that scale with users: memory-mapped, so opening a release reads none of them."""

PACE_BYTES_PER_S = 256 * 2**20
"""How fast a preparation may read and write release files. A lower CPU priority does not stop
a neighbour from taking memory bandwidth. Measured on the 2-core benchmark host: a process doing
nothing but large array copies on the other core raised an in-process recommend() from p50 2.3
to 7.8 ms (each request reads the 12.8 MB of title factors), and an unpaced preparation (about
0.5 GB moved in bursts) raised a serving loop's p99 from 3.4 to 11.9 ms. Paced, the same bytes
move in 1 MiB steps over about two seconds; a swap takes that much longer."""

CHUNK = 2**20
LAYOUT = 2
"""The prepared layout's version, part of every directory's name: a server restarted on newer
code prepares its release afresh instead of opening a directory that lacks newer arrays (layout 2
added the title-factor moments)."""
MARKER = ".netflix-assets-prepared-release"
"""A file in every directory `prepare` makes: the directories `prune` may remove (besides
empty scratch, `SCRATCH_NAME`)."""
KEY_DIGITS = 20
"""Hex digits of a prepared directory's name (`key`)."""
SCRATCH_NAME = re.compile(rf"\.[0-9a-f]{{{KEY_DIGITS}}}-[a-z0-9_]+")
"""How `prepare`'s scratch is named (mkdtemp's prefix is `.` and the key, then a dash): the name
`prune` uses for scratch killed before its marker was written, which it removes only if empty."""
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class _Paced:
    """A binary file whose reads and writes are held to PACE_BYTES_PER_S (np.load and np.save
    read and write non-plain files in chunks, so every chunk passes through here)."""

    def __init__(self, raw, rate: float = PACE_BYTES_PER_S) -> None:
        self._raw, self._rate = raw, rate
        self._start, self._moved = time.monotonic(), 0

    def _spend(self, n: int) -> None:
        self._moved += n
        ahead = self._moved / self._rate - (time.monotonic() - self._start)
        if ahead > 0:
            time.sleep(ahead)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while part := self.read(CHUNK):
                parts.append(part)
            return b"".join(parts)
        data = self._raw.read(n)
        self._spend(len(data))
        return data

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        for at in range(0, len(view), CHUNK):
            self._spend(self._raw.write(view[at : at + CHUNK]))
        return len(view)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def flush(self) -> None:
        self._raw.flush()


def key(version: str, manifest: Manifest, store: ObjectStoreOps) -> str:
    """The directory name of a release: a digest of its version and where its files are, so two
    stores that both hold a "v1" never share a prepared directory."""
    where = [store.uri(manifest[k]) for k in ("als_key", "ranker_key", "titles_key")]
    blob = json.dumps([LAYOUT, version, sorted(manifest.items()), where])
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_DIGITS]


def _sorted(ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """ids sorted (the server finds a row by binary search), their rows, and the permutation
    (None when they were sorted already, as fit_als writes them)."""
    if ids.dtype.kind != "U":
        ids = ids.astype(str)
    if ids.size < 2 or bool(np.all(ids[:-1] < ids[1:])):
        return ids, rows, None
    order = np.argsort(ids, kind="stable")
    return ids[order], rows[order], order


def _read_als(store: ObjectStoreOps, key: str, scratch: Path) -> AlsModel:
    """The ALS model, read at the paced rate (a local store's file is read where it lies)."""
    with (
        open(store.local_path(key, scratch), "rb") as raw,
        np.load(_Paced(raw), allow_pickle=False) as z,
    ):
        return AlsModel(z["users"], z["titles"], z["user_factors"], z["title_factors"])


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as raw:
        np.save(_Paced(raw), array, allow_pickle=False)


def _write(out: Path, version: str, manifest: Manifest, store: ObjectStoreOps) -> None:
    als = _read_als(store, manifest["als_key"], out / "download")
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
    if manifest.get("item_item_key"):
        weights = ItemItem.from_bytes(store.get_bytes(manifest["item_item_key"])).weights
        if weights.shape[0] != len(title_ids):
            raise ValueError(
                f"release {version}: the item-item matrix has {weights.shape[0]} titles but the "
                f"ALS model has {len(title_ids)}; they come from different dates"
            )
        if order is not None:
            weights = weights[order][:, order].tocsr()
        moments = FactorMoments.of(arrays["title_factors"])
        arrays |= {
            "item_item_indptr": weights.indptr,
            "item_item_indices": weights.indices,
            "item_item_data": weights.data.astype(np.float32),
            "title_moment_mean": moments.mean,
            "title_moment_second": moments.second,
        }
    del als
    shutil.rmtree(out / "download", ignore_errors=True)
    for name, array in arrays.items():
        _save(out / f"{name}.npy", array)
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
        **Pipeline.from_manifest(manifest).to_manifest(),
        "blend_weight": manifest.get("blend_weight", "0.5"),
    }
    (out / "release.json").write_text(json.dumps(meta))


def prepare(version: str, manifest: Manifest, store: ObjectStoreOps, root: Path) -> Path:
    """The prepared directory of a release under `root`, made now unless it exists already (a
    restarted server reuses it). Raises with the cause when the release cannot be served."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / key(version, manifest, store)
    if (final / "release.json").exists():
        return final
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    try:
        (scratch / MARKER).write_text(f"prepared release {version}; removed when not served\n")
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
        pipeline=Pipeline.from_manifest(meta),
        item_item=_item_item(path, len(array("title_ids"))),
        blend_weight=float(meta.get("blend_weight", 0.5)),
        moments=_moments(path),
    )


def _moments(path: Path) -> FactorMoments | None:
    if not (path / "title_moment_mean.npy").exists():
        return None
    return FactorMoments(*(np.load(path / f"title_moment_{n}.npy") for n in ("mean", "second")))


def _item_item(path: Path, titles: int) -> ItemItem | None:
    if not (path / "item_item_indptr.npy").exists():
        return None
    parts = [np.load(path / f"item_item_{n}.npy") for n in ("data", "indices", "indptr")]
    return ItemItem("item_item", csr_matrix(tuple(parts), shape=(titles, titles)))


def load(version: str, manifest: Manifest, store: ObjectStoreOps, root: Path) -> Bundle:
    """Prepare in this process and open: for tools and benchmarks, not for a serving process."""
    return open_bundle(prepare(version, manifest, store, root))


class Preparer:
    """`prepare` in one long-lived child process at idle CPU priority, for a serving process.

    The child is started, and its imports (numpy, LightGBM, lleaves, Dagster's resource types:
    about 2.5 s of CPU) paid, by the first release or by `start()` (ModelStore.start calls it),
    both before the server takes traffic; a fresh interpreter
    per release spent that at every swap, and on the 2-core host a busy neighbour core slows
    requests whatever its priority. A child that dies (killed, out of memory) fails only the
    release it was preparing, with a message saying so; the next release starts a new child.
    An error inside `prepare` comes back as itself (say ObjectNotFound naming the key).
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_init,
            )
        return self._pool

    def start(self) -> None:
        """Start the child and import everything it needs."""
        self._executor().submit(_warm).result()

    def pid(self) -> int | None:
        """The child's process id, or None before it starts."""
        processes = getattr(self._pool, "_processes", None) or {}
        return next(iter(processes), None)

    def __call__(self, version: str, manifest: Manifest, store: ObjectStoreOps, root: Path) -> Path:
        try:
            # Dagster resources do not pickle; their configuration does.
            job = self._executor().submit(_prepare, version, manifest, store.client(), root)
            return job.result()
        except BrokenProcessPool as exc:
            self.close()
            raise RuntimeError(
                f"preparing release {version} failed: the preparing process died ({exc})"
            ) from exc

    def close(self) -> None:
        if self._pool is not None:
            # Waiting lets the pool release its semaphores (else a leak warning at exit).
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def prune(root: Path, keep: set[Path]) -> None:
    """Remove prepared releases other than `keep` (the server's current one), and scratch left
    by a preparation that was killed: only directories holding `MARKER`, and empty ones named
    as `prepare` names its scratch (killed before the marker was written), never anything else
    in `root` (a user's files, a symlink). An old bundle still mapped keeps working: unlinking a
    mapped file does not unmap it."""
    if not root.exists():
        return
    keep = {p.resolve() for p in keep}
    for entry in root.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            continue
        if not (entry / MARKER).is_file():
            if SCRATCH_NAME.fullmatch(entry.name):
                with contextlib.suppress(OSError):  # not empty: not ours to judge
                    entry.rmdir()
            continue
        if entry.resolve() not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def _die_with_parent() -> None:
    """Ask Linux to kill this child when the server that started it dies. A pool worker never
    sees end-of-file on its task queue (it holds the queue's write end itself), so a server
    stopped by a signal, which uvicorn re-raises after its graceful shutdown, left the preparer
    running; every benchmark run added one orphan."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the server died before the request took effect
            os._exit(1)


def _child_init() -> None:
    _die_with_parent()
    _idle_priority()


def _idle_priority() -> None:
    """Run only on CPU time nothing else wants (SCHED_IDLE, below even nice 19, which CFS still
    gives a share of a busy core); where that policy is unavailable, nice 19."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def _prepare(version: str, manifest: Manifest, store: ObjectStore, root: Path) -> Path:
    """Runs in the child: `prepare` with the plain (picklable) store client."""
    return prepare(version, manifest, store, root)


def _warm() -> None:
    """Runs in the child: import what `prepare` and `compile_scorer` use."""
    with contextlib.suppress(ImportError):
        import lleaves  # noqa: F401
