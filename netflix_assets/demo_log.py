"""Where the demo's noise goes: everything its runs print lands in a log file, not the terminal.

A demo run prints Dagster's event log at DEBUG (every step's start, inputs, outputs and
materializations), Spark's JVM warnings and FFmpeg's progress: hundreds of lines in which the
results are lost. While a step runs, both the Python streams and the process's file descriptors 1
and 2 point at a log file (the descriptors so that the JVM and other child processes started then
write there too); the demo itself talks to the terminal through a console on a copy of the
original stdout. Dagster's event log stays in the instance as well, so `make ui` shows every run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console

from netflix_assets import settings


def new_log_path(now: datetime | None = None) -> Path:
    """A fresh log file under `.state/demo/`, named by the UTC start time."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    folder = settings.state_dir() / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"demo-{stamp}.log"


def terminal_console() -> Console:
    """A console on a copy of the current stdout, so it still reaches the terminal while file
    descriptor 1 points at the log."""
    sys.stdout.flush()
    return Console(file=os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1))


@contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Send stdout and stderr, of Python and of child processes, to `log_path` (appended)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_streams = sys.stdout, sys.stderr
    saved_fds = os.dup(1), os.dup(2)
    with open(log_path, "a", buffering=1, encoding="utf-8", errors="replace") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        try:
            yield log
        finally:
            log.flush()
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])
