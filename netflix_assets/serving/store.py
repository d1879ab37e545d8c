"""Hot swap: the current bundle, replaced whole when a newer release appears.

A background thread polls the source. A new release is prepared by a separate process
(serving.prepared: the CPU-heavy part, kept off this process's GIL), opened beside the old bundle
and then published by one reference assignment, so in-flight requests keep the bundle they hold
and no request ever sees half a model. A release that fails to load is logged and skipped (and
tried again only after `retry_seconds`); the old bundle keeps serving.

The replaced bundle is released by the poller too, `retire_seconds` after the swap (requests
take milliseconds, so none holds it by then): freeing a bundle unmaps hundreds of MB of pruned
files, and whichever thread drops the last reference pays for it. Left to the request that
happened to finish last on it, that was the event loop.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from netflix_assets.clients.object_store import ObjectStoreOps
from netflix_assets.serving import bundle as bundles
from netflix_assets.serving import prepared

Prepare = Callable[[str, bundles.Manifest, ObjectStoreOps, Path], Path]

log = logging.getLogger(__name__)


class ModelStore:
    def __init__(
        self,
        source: bundles.Source,
        object_store: ObjectStoreOps,
        release_dir: Path,
        poll_seconds: float = 10.0,
        prepare: Prepare | None = None,
        retry_seconds: float = 300.0,
        retire_seconds: float = 5.0,
    ) -> None:
        """`release_dir` holds the prepared releases (it prunes those it does not serve, and
        only directories `prepared.prepare` made, so other files there are safe); `prepare` is
        where the heavy work runs: by default a `prepared.Preparer` child process, or
        `prepared.prepare` for a caller without requests in flight."""
        self._source = source
        self._object_store = object_store
        self._release_dir = Path(release_dir)
        self._poll_seconds = poll_seconds
        self._child = prepared.Preparer() if prepare is None else None
        self._prepare = prepare or self._child
        self._retry_seconds = retry_seconds
        self._retire_seconds = retire_seconds
        self._retired: list[tuple[float, bundles.Bundle]] = []
        self._failed: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: bundles.Bundle | None = None
        self.swaps = 0
        self.load_errors = 0
        self.last_error: str | None = None
        self.loaded_at: float | None = None

    def refresh(self) -> bool:
        """Load the newest release if it differs from the current one; True when swapped."""
        self.release_retired()
        found = self._source()
        if found is None:
            return False
        version, manifest = found
        if self.current is not None and self.current.version == version:
            return False
        failed_at = self._failed.get(version)
        if failed_at is not None and time.monotonic() - failed_at < self._retry_seconds:
            return False
        path: Path | None = None
        try:
            path = self._prepare(version, manifest, self._object_store, self._release_dir)
            fresh = prepared.open_bundle(path)
        except Exception as exc:  # a broken release must not take the service down
            if path is not None:  # prepared but unopenable: make the retry prepare afresh
                shutil.rmtree(path, ignore_errors=True)
            self._failed[version] = time.monotonic()
            self.load_errors += 1
            self.last_error = f"release {version}: {exc}"
            log.error("not swapping to %s: %s", version, exc)
            return False
        self._failed.pop(version, None)
        if self.current is not None:
            self.swaps += 1
            self._retired.append((time.monotonic(), self.current))
        self.current = fresh
        self.loaded_at = time.time()
        prepared.prune(self._release_dir, keep={path})
        log.info("serving release %s", version)
        return True

    def release_retired(self, now: float | None = None) -> int:
        """Drop this store's references to bundles replaced at least `retire_seconds` ago, in
        the calling thread (the poller's), and return how many were dropped."""
        now = time.monotonic() if now is None else now
        due = [b for at, b in self._retired if now - at >= self._retire_seconds]
        if not due:
            return 0
        self._retired = [(at, b) for at, b in self._retired if now - at < self._retire_seconds]
        started = time.perf_counter()
        versions = [b.version for b in due]
        del due  # the last reference, unless a request still holds one
        log.info(
            "released %s in %.1f ms", ", ".join(versions), (time.perf_counter() - started) * 1e3
        )
        return len(versions)

    def start(self) -> None:
        """Poll in the background until stop(). The preparer child is warmed first, so its
        imports are paid now, before traffic, even when no release existed at startup."""
        if self._thread is not None:
            return
        if self._child is not None:
            self._child.start()

        def loop() -> None:
            while not self._stop.wait(self._poll_seconds):
                try:
                    self.refresh()
                except Exception as exc:  # e.g. the instance's database briefly unreachable
                    self.last_error = str(exc)
                    log.warning("release poll failed: %s", exc)

        self._thread = threading.Thread(target=loop, name="release-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._child is not None:
            self._child.close()
