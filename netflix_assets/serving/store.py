"""Hot swap: the current bundle, replaced whole when a newer release appears.

A background thread polls the source. A new release is loaded completely beside the old one and
then published by one reference assignment, so in-flight requests keep the bundle they hold and
no request ever sees half a model. A release that fails to load is logged and skipped; the old
bundle keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time

from netflix_assets.serving import bundle as bundles
from resources.object_store import ObjectStoreResource

log = logging.getLogger(__name__)


class ModelStore:
    def __init__(
        self, source: bundles.Source, object_store: ObjectStoreResource, poll_seconds: float = 10.0
    ) -> None:
        self._source = source
        self._object_store = object_store
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: bundles.Bundle | None = None
        self.swaps = 0
        self.load_errors = 0
        self.last_error: str | None = None
        self.loaded_at: float | None = None

    def refresh(self) -> bool:
        """Load the newest release if it differs from the current one; True when swapped."""
        found = self._source()
        if found is None:
            return False
        version, manifest = found
        if self.current is not None and self.current.version == version:
            return False
        try:
            fresh = bundles.load(version, manifest, self._object_store)
        except Exception as exc:  # a broken release must not take the service down
            self.load_errors += 1
            self.last_error = f"release {version}: {exc}"
            log.error("not swapping to %s: %s", version, exc)
            return False
        if self.current is not None:
            self.swaps += 1
        self.current = fresh
        self.loaded_at = time.time()
        log.info("serving release %s", version)
        return True

    def start(self) -> None:
        """Poll in the background until stop()."""
        if self._thread is not None:
            return

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
