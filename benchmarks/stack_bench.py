"""Stack start time and idle memory, measured on a private state folder and private ports.

Prints: first start (fresh state: KRaft format, initdb), restart (state kept), the no-op `up`
of a running stack, and the resident memory of each idle service (process tree RSS).
Run: .venv/bin/python benchmarks/stack_bench.py
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants, from /proc."""
    total = 0
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        stack.extend(children.get(current, []))
    return total


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="stack-bench-"))
    state.chmod(0o755)  # the postgres OS user must reach its data folder
    os.environ.update(
        NETFLIX_ASSETS_STATE=str(state),
        NETFLIX_ASSETS_KAFKA_PORT=str(_free_port()),
        NETFLIX_ASSETS_KAFKA_CONTROLLER_PORT=str(_free_port()),
        NETFLIX_ASSETS_REDIS_PORT=str(_free_port()),
        NETFLIX_ASSETS_POSTGRES_PORT=str(_free_port()),
    )
    os.environ["NETFLIX_ASSETS_KAFKA_BOOTSTRAP"] = (
        f"127.0.0.1:{os.environ['NETFLIX_ASSETS_KAFKA_PORT']}"
    )
    from netflix_assets.stack import jars, manager
    from netflix_assets.stack.services import all_services

    jars.resolve("kafka")
    try:
        t0 = time.perf_counter()
        manager.up()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        manager.up()
        noop = time.perf_counter() - t0
        time.sleep(10)  # let the JVM settle before reading idle memory
        rss = {s.name: _rss_kib(s.pid() or 0) for s in all_services()}
        manager.down()
        t0 = time.perf_counter()
        manager.up()
        restart = time.perf_counter() - t0
    finally:
        manager.down()
    print(f"stack first start (fresh state)   {first:6.1f} s")
    print(f"stack restart (state kept)        {restart:6.1f} s")
    print(f"stack up when already running     {noop:6.2f} s")
    for name, kib in rss.items():
        print(f"idle RSS {name:9s}                {kib / 1024:6.0f} MiB")
    print(f"idle RSS total                    {sum(rss.values()) / 1024:6.0f} MiB")


if __name__ == "__main__":
    main()
