"""CPU seconds of other processes, from /proc (Linux): what the benchmarks use to charge a
server, a JVM or a broker with its own CPU time when it runs beside the measuring process."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads."""
    # Fields after the command name: state is the first, utime the 12th, stime the 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of a process and its live descendants (e.g. a Python driver and
    the JVM it starts); children that already exited are not counted."""
    family = [root]
    for pid in family:  # grows while walked: each process's children join the end
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            family.extend(int(child) for child in children.read_text().split())
    total = 0.0
    for pid in family:
        with contextlib.suppress(OSError):  # exited while walked
            total += process_cpu_s(pid)
    return total
