"""Serving p99 with Prometheus metrics on vs off: two real `netflix-assets serve` processes, one
with metrics (and a scraper reading /metrics every --scrape-seconds), one `--no-metrics`, on the
same release and Redis, loaded at the same time.

Each run is one open-loop stream of --rps requests for --seconds in which every other request
goes to the server with metrics and the rest to the one without, so whatever else the host is
doing hits both alike at every moment; the figure is the p99 of the "on" requests against the
p99 of the "off" ones (latency from each request's scheduled send time, so queueing counts),
with the handlers' own p99 (Server-Timing) beside it. Both servers serve without experiments,
so only the metrics differ. The release and Redis fill are serving_bench's (a smaller release
by default: the cost of metrics does not depend on the model's size).
Needs Redis (`netflix-assets stack up redis`); uses Redis database 14.

    .venv/bin/python benchmarks/metrics_overhead_bench.py [--runs 3] [--rps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import redis
import serving_bench  # this folder's, on sys.path when run as a script

from netflix_assets import settings
from resources.object_store import ObjectStoreResource

DB = 14
PREFIX = "bench-metrics:v1"
TARGET = 0.05


def start_server(port: int, manifest: Path, root: str, metrics: bool) -> subprocess.Popen:
    env = {
        **os.environ,
        "NETFLIX_ASSETS_API_KEY": serving_bench.KEY,
        "NETFLIX_ASSETS_REDIS_URL": f"{settings.redis_url().rsplit('/', 1)[0]}/{DB}",
        "NETFLIX_ASSETS_OBJECT_STORE": root,
    }
    command = [
        sys.executable,
        "-m",
        "netflix_assets.cli",
        "serve",
        "--manifest",
        str(manifest),
        "--port",
        str(port),
        "--release-dir",
        str(Path(root) / f"served-{port}"),
        "--no-experiments",
        "--metrics" if metrics else "--no-metrics",
    ]
    return subprocess.Popen(command, env=env)


class Scraper:
    """Reads /metrics every `seconds` while running, as Prometheus would."""

    def __init__(self, port: int, seconds: float) -> None:
        self.port, self.seconds, self.scrapes = port, seconds, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            response = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=60)
            assert response.status_code == 200 and "recs_request_seconds" in response.text
            self.scrapes += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def interleaved(ports: dict[bool, int], args) -> dict[bool, dict[str, list[float]]]:
    """One open-loop stream of --rps requests for --seconds, every other request to the server
    with metrics and the rest to the one without, so both serve at the same moments of the
    host's load. Returns, per server, each request's latency from its scheduled time and the
    handler's own time (its Server-Timing header)."""
    seen = {m: {"latency": [], "server": []} for m in (True, False)}
    failures: list[str] = []
    rng = np.random.default_rng(11)
    sessions = {
        m: aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}",
            headers={"X-API-Key": serving_bench.KEY},
            connector=aiohttp.TCPConnector(limit=64),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        for m, port in ports.items()
    }

    async def one(metrics: bool, scheduled: float, user: int) -> None:
        try:
            async with sessions[metrics].get(f"/v1/recommendations/u{user}?k=20") as r:
                await r.read()
                if r.status != 200:
                    failures.append(str(r.status))
                    return
                timing = float(r.headers["Server-Timing"].split("dur=")[1]) / 1000
        except (aiohttp.ClientError, TimeoutError) as exc:
            failures.append(type(exc).__name__)
            return
        seen[metrics]["latency"].append(time.perf_counter() - scheduled)
        seen[metrics]["server"].append(timing)

    try:
        start = time.perf_counter()
        tasks = []
        for i in range(int(args.rps * args.seconds)):
            scheduled = start + i / args.rps
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            request = one(i % 2 == 0, scheduled, int(rng.integers(args.users)))
            tasks.append(asyncio.create_task(request))
        await asyncio.gather(*(t for t in tasks if not t.done()))
    finally:
        for session in sessions.values():
            await session.close()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed ({failures[:3]}); not a fair comparison")
    return seen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--titles", type=int, default=20_000)
    p.add_argument("--rps", type=float, default=200)
    p.add_argument("--seconds", type=float, default=60, help="length of each run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--scrape-seconds", type=float, default=5.0)
    p.add_argument("--port", type=int, default=18775)
    args = p.parse_args()

    # serving_bench's release and fill use its PREFIX; this benchmark keeps its own Redis
    # database and prefix so it never meets a serving_bench run's keys (or its FLUSHDB).
    serving_bench.PREFIX = PREFIX
    client = redis.Redis.from_url(f"{settings.redis_url().rsplit('/', 1)[0]}/{DB}")
    ports = {True: args.port, False: args.port + 1}
    with tempfile.TemporaryDirectory(dir=settings.state_dir()) as root:
        store = ObjectStoreResource(root=root)
        release = serving_bench.write_release(store, "M", args.users, args.titles, seed=1)
        client.flushdb()
        serving_bench.fill_redis(client, args.users, args.titles)
        while client.info("persistence")["rdb_bgsave_in_progress"]:
            time.sleep(0.5)
        manifest = Path(root) / "release.json"
        manifest.write_text(json.dumps(release))
        servers = [start_server(ports[m], manifest, root, m) for m in (True, False)]
        try:
            for port in ports.values():
                serving_bench.wait_healthy(port)
            assert httpx.get(f"http://127.0.0.1:{ports[False]}/metrics").status_code == 404
            for port in ports.values():  # warm-up, not counted
                asyncio.run(serving_bench.load(port, 50, 3, args.users, 1e9, lambda: None))
            ratios = []
            for run in range(1, args.runs + 1):
                load_avg = os.getloadavg()
                scraper = Scraper(ports[True], args.scrape_seconds)
                try:
                    seen = asyncio.run(interleaved(ports, args))
                finally:
                    scraper.stop()
                on, off = (
                    np.percentile(np.array(seen[m]["latency"]) * 1000, [50, 99]) for m in (1, 0)
                )
                son, soff = (
                    np.percentile(np.array(seen[m]["server"]) * 1000, [50, 99]) for m in (1, 0)
                )
                ratios.append(on[1] / off[1])
                print(
                    f"run {run} (load average {load_avg[0]:.1f} {load_avg[1]:.1f} "
                    f"{load_avg[2]:.1f}): p99 on {on[1]:.2f} ms vs off {off[1]:.2f} ms, "
                    f"overhead {on[1] / off[1] - 1:+.1%}; p50 on {on[0]:.2f} vs off "
                    f"{off[0]:.2f} ms; handler p99 on {son[1]:.2f} vs off {soff[1]:.2f} ms "
                    f"({son[1] / soff[1] - 1:+.1%}); {len(seen[True]['latency'])} + "
                    f"{len(seen[False]['latency'])} requests, {scraper.scrapes} scrapes",
                    flush=True,
                )
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
            client.flushdb()
    overheads = np.array(ratios) - 1
    print(
        f"p99 overhead of metrics over {args.runs} runs: median {np.median(overheads):+.1%}, "
        f"worst {overheads.max():+.1%} (target <= {TARGET:.0%})"
    )


if __name__ == "__main__":
    main()
