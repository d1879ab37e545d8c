"""Serving latency: 100k titles, 1M users, steady open-loop load from a second process, and a
model swap half-way through.

Builds two synthetic releases (random factors; a ranker trained on synthetic rows with the
production settings), fills Redis database 15 with online features and watched sets for every
user, starts `netflix-assets serve --manifest` as a subprocess and sends --rps requests/s for
--seconds from this process. Latency is measured from each request's scheduled send time, so
queueing is counted (no coordinated omission). The baseline is the same recommend() call in
process without HTTP or Redis, measured in this run. Needs Redis (`netflix-assets stack up redis`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import lightgbm as lgb
import numpy as np
import orjson
import pandas as pd
import redis
from proc_stats import process_cpu_s
from scipy.sparse import csr_matrix

from netflix_assets import settings
from netflix_assets.recs import ranker
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.generators import ItemItem
from netflix_assets.recs.two_stage import Pipeline, TitleTable
from netflix_assets.serving import prepared
from netflix_assets.serving.recommender import recommend
from resources.object_store import ObjectStoreResource

KEY = "bench-key"
PREFIX = "bench:v1"
DB = 15
FILLED = "bench:filled"  # users:titles of the fill in db 15, for --keep-redis


def wait_healthy(port: int, timeout_s: float = 180) -> None:
    """Until the server on `port` answers /healthz with 200, or exit naming it."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server on {port} did not become healthy")


def item_item(titles: int, neighbours: int, rng: np.random.Generator) -> bytes:
    """A random titles x titles matrix with `neighbours` positive weights per title, the size of
    a pruned EASE / RP3beta model."""
    cols = rng.integers(0, titles, (titles, neighbours))
    data = rng.random((titles, neighbours)).astype(np.float32)
    indptr = np.arange(0, titles * neighbours + 1, neighbours)
    weights = csr_matrix((data.ravel(), cols.ravel(), indptr), shape=(titles, titles))
    return ItemItem("ease", weights).to_bytes()


def write_release(
    store: ObjectStoreResource,
    version: str,
    users: int,
    titles: int,
    seed: int,
    pipeline: str = "als-ranker",
):
    rng = np.random.default_rng(seed)
    model = AlsModel(
        np.array([f"u{i}" for i in range(users)]),
        np.array([f"t{i}" for i in range(titles)]),
        rng.normal(0, 0.3, (users, 32)).astype(np.float32),
        rng.normal(0, 0.3, (titles, 32)).astype(np.float32),
    )
    feats = pd.DataFrame({"title_id": model.titles})
    for column in ranker.TITLE_FEATURES:
        feats[column] = rng.random(titles) * 100
    rows = pd.DataFrame(rng.random((50_000, len(ranker.FEATURES))), columns=list(ranker.FEATURES))
    rows["label"] = (rows["als_score"] + 0.3 * rows["t_trend"] > 0.9).astype(int)
    rows["group"] = np.repeat(np.arange(1000), 50)
    booster = ranker.train(rows, seed=seed, rounds=100)
    keys = {
        "als_key": f"{version}/als.npz",
        "ranker_key": f"{version}/ranker.txt",
        "titles_key": f"{version}/titles.npz",
    }
    store.put_bytes(model.to_bytes(), keys["als_key"])
    store.put_bytes(booster.model_to_string().encode(), keys["ranker_key"])
    store.put_bytes(TitleTable.build(model.titles, feats).to_bytes(), keys["titles_key"])
    if pipeline == "blend":  # what candidate_model chose on MovieLens-shaped data
        keys["item_item_key"] = f"{version}/item_item.npz"
        store.put_bytes(item_item(titles, 100, rng), keys["item_item_key"])
        keys |= Pipeline("blend", use_ranker=False, mmr_lambda=0.6).to_manifest()
        keys["blend_weight"] = "0.5"
    return {"version": version, "as_of": "2026-11-25", "online_prefix": PREFIX, **keys}


def fill_redis(client: redis.Redis, users: int, titles: int) -> None:
    rng = np.random.default_rng(3)
    pipe = client.pipeline(transaction=False)
    for u in range(users):
        pipe.hset(
            f"{PREFIX}:user:u{u}",
            mapping={
                "u_interactions_28d": "12.0",
                "u_mean_weight": "1.4",
                "u_days_since_last": "2",
            },
        )
        pipe.sadd(f"{PREFIX}:seen:u{u}", *[f"t{t}" for t in rng.integers(0, titles, 20)])
        if u % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def percentiles(values: list[float]) -> str:
    a = np.array(values) * 1000
    return (
        f"p50 {np.percentile(a, 50):.2f} ms, p90 {np.percentile(a, 90):.2f} ms, "
        f"p99 {np.percentile(a, 99):.2f} ms, max {a.max():.2f} ms"
    )


async def load(port: int, rps: float, seconds: float, users: int, swap_at: float, on_swap):
    """Open-loop load with aiohttp (a lighter client than httpx, so less of the two cores goes
    to the measuring side); every latency counts from the request's scheduled time."""
    latencies, statuses, versions, server, sent = [], [], [], [], []
    rng = np.random.default_rng(11)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}",
        headers={"X-API-Key": KEY},
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=10),
    ) as client:

        async def one(scheduled: float, user: int) -> None:
            try:
                async with client.get(f"/v1/recommendations/u{user}?k=20") as r:
                    body = await r.read()
                    statuses.append(r.status)
                    if r.status == 200:
                        versions.append((scheduled, orjson.loads(body)["model_version"]))
                        server.append(float(r.headers["Server-Timing"].split("dur=")[1]) / 1000)
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses.append(type(exc).__name__)
            latencies.append(time.perf_counter() - scheduled)
            sent.append(scheduled)

        start = time.perf_counter()
        tasks, n, swapped = [], int(rps * seconds), False
        for i in range(n):
            scheduled = start + i / rps
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if not swapped and scheduled - start >= swap_at:
                on_swap()
                swapped = True
            tasks.append(asyncio.create_task(one(scheduled, int(rng.integers(users)))))
        # Only the unfinished ones: gathering all 12,000 tasks stalled this loop ~40 ms while the
        # last responses waited to be read, and the last request was counted that slow.
        await asyncio.gather(*(t for t in tasks if not t.done()))
        elapsed = time.perf_counter() - start
    return latencies, statuses, versions, server, sent, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--rps", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument(
        "--pipeline",
        choices=("als-ranker", "blend"),
        default="als-ranker",
        help="als-ranker: ALS -> ranker -> MMR 0.8 (a manifest without pipeline fields); "
        "blend: ALS + item-item (100 neighbours a title) blend -> MMR 0.6, no ranker",
    )
    parser.add_argument(
        "--keep-redis",
        action="store_true",
        help=f"leave Redis db {DB} filled after the run, and reuse a fill of the same size "
        "(three runs then cost one fill; flush db 15 by hand when done)",
    )
    args = parser.parse_args()

    base_url = settings.redis_url().rsplit("/", 1)[0]
    redis_url = f"{base_url}/{DB}"
    client = redis.Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory(dir=settings.state_dir()) as root:
        store = ObjectStoreResource(root=root)
        t0 = time.perf_counter()
        releases = [
            write_release(store, v, args.users, args.titles, s, args.pipeline)
            for v, s in (("A", 1), ("B", 2))
        ]
        print(
            f"releases built in {time.perf_counter() - t0:.1f} s "
            f"({args.users:,} users, {args.titles:,} titles)"
        )
        filled = f"{args.users}:{args.titles}".encode()
        if args.keep_redis and client.get(FILLED) == filled:
            print(f"redis db {DB} already filled by an earlier --keep-redis run: reused")
        else:
            client.flushdb()
            t0 = time.perf_counter()
            fill_redis(client, args.users, args.titles)
            # The fill triggers Redis's periodic snapshot (a forked child writing ~1 GB for
            # seconds on these 2 cores); take it now so the load phase measures serving.
            while client.info("persistence")["rdb_bgsave_in_progress"]:
                time.sleep(0.5)
            client.set(FILLED, filled)
            print(
                f"redis db {DB} filled in {time.perf_counter() - t0:.1f} s "
                f"({client.info('memory')['used_memory_human']})"
            )
        # The snapshot policy counts changes in every db: other writers of a shared Redis (a
        # train run's online features) leave changes that would start that snapshot during the
        # load phase. Take it now, so the load phase starts with none pending.
        while client.info("persistence")["rdb_bgsave_in_progress"]:
            time.sleep(0.5)
        client.save()

        # Baseline: the same computation in process, no HTTP and no Redis; once with the ranker
        # the service uses (compiled) and once with LightGBM's own predict, interleaved.
        t0 = time.perf_counter()
        loaded = prepared.load("A", releases[0], store, Path(root) / "in-process")
        print(f"release A prepared and opened in process in {time.perf_counter() - t0:.2f} s")
        booster = lgb.Booster(model_str=store.get_bytes(releases[0]["ranker_key"]).decode())
        plain = dataclasses.replace(loaded, scorer=ranker.lightgbm_scorer(booster))
        rng = np.random.default_rng(5)
        compute, compute_lgb, compute_cpu = [], [], []
        for i in range(4000):
            u = int(rng.integers(args.users))
            seen = [f"t{t}" for t in rng.integers(0, args.titles, 20)]
            started, cpu = time.perf_counter(), time.thread_time()
            recommend(plain if i % 2 else loaded, f"u{u}", {"u_interactions_28d": "12"}, seen, 20)
            (compute_lgb if i % 2 else compute).append(time.perf_counter() - started)
            if not i % 2:
                compute_cpu.append(time.thread_time() - cpu)
        print(
            f"in-process recommend(), {loaded.scorer.engine} ranker (baseline): "
            f"{percentiles(compute)}; CPU time {percentiles(compute_cpu)} "
            "(wall time above CPU time is waiting for a core)"
        )
        print(
            f"in-process recommend(), LightGBM predict: {percentiles(compute_lgb)}; "
            f"p50 ratio {np.percentile(compute_lgb, 50) / np.percentile(compute, 50):.2f}"
        )
        del loaded, plain, booster

        manifest = Path(root) / "release.json"
        manifest.write_text(json.dumps(releases[0]))
        env = {
            **os.environ,
            "NETFLIX_ASSETS_API_KEY": KEY,
            "NETFLIX_ASSETS_REDIS_URL": redis_url,
            "NETFLIX_ASSETS_OBJECT_STORE": root,
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netflix_assets.cli",
                "serve",
                "--manifest",
                str(manifest),
                "--port",
                str(args.port),
                "--poll-seconds",
                "1",
                "--release-dir",
                str(Path(root) / "served"),
            ],
            env=env,
        )
        try:
            wait_healthy(args.port, 120)
            # The measuring side must not add pauses of its own: a full collection of this
            # process's heap (pandas, LightGBM, the releases) stalls every request in flight and
            # would be counted as server latency. Freeze what exists now.
            gc.freeze()
            # Warm-up, not counted.
            asyncio.run(load(args.port, 50, 3, args.users, 1e9, lambda: None))

            def swap() -> None:
                manifest.write_text(json.dumps(releases[1]))

            cpu_before = process_cpu_s(server.pid)
            latencies, statuses, versions, server_side, sent, elapsed = asyncio.run(
                load(args.port, args.rps, args.seconds, args.users, args.seconds / 2, swap)
            )
            server_cpu = process_cpu_s(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep_redis:
            client.flushdb()
        else:
            print(
                f"Redis db {DB} left filled (--keep-redis): while it is, every minute with writes "
                "to this Redis snapshots all of it on these cores (other benchmarks warn); "
                f"flush it when done: redis-cli -n {DB} FLUSHDB with the stack's password"
            )

    errors = [s for s in statuses if s != 200]
    switch = next((t for t, v in sorted(versions) if v == "B"), None)
    print(
        f"HTTP at {len(statuses) / elapsed:.0f} req/s "
        f"(offered {args.rps:.0f}) for {args.seconds:.0f} s: "
        f"{percentiles(latencies)}; errors {len(errors)} {sorted(set(map(str, errors)))}"
    )
    print(f"server-side handler time (Server-Timing): {percentiles(server_side)}")
    print(
        f"server process CPU per request: {server_cpu / max(len(statuses), 1) * 1000:.2f} ms "
        "(user + system time over the load phase, swap included; the figure least moved by "
        "other work on the host)"
    )
    if switch is not None:
        near = [
            lat for t, lat in zip(sent, latencies, strict=True) if switch - 1 <= t <= switch + 5
        ]
        print(f"requests sent from 1 s before to 5 s after the swap: {percentiles(near)}")
        away = [
            lat for t, lat in zip(sent, latencies, strict=True) if not switch - 1 <= t <= switch + 5
        ]
        print(f"all other requests: {percentiles(away)}")
    start = min(sent)
    slow = sorted(
        ((lat, t - start) for t, lat in zip(sent, latencies, strict=True) if lat > 0.010),
        reverse=True,
    )
    print(
        f"requests over 10 ms: {len(slow)}; slowest at (s after start): "
        + ", ".join(f"{at:.1f}s {lat * 1000:.0f}ms" for lat, at in slow[:8])
    )
    if switch is not None:
        changed = min(sent) + args.seconds / 2
        print(f"first request answered by B was sent {switch - changed:.2f} s after the swap")
    print(
        f"model swap A->B half-way: {'observed' if switch else 'NOT observed'}; "
        f"last version served {sorted(versions)[-1][1] if versions else '-'}"
    )
    http_p50 = np.percentile(latencies, 50)
    print(f"ratio HTTP p50 / in-process p50: {http_p50 / np.percentile(compute, 50):.2f}")


if __name__ == "__main__":
    main()
