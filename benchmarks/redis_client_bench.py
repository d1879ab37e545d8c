"""What awaiting Redis costs the recommendation handler: the request's one round trip (a pipeline
of HGETALL on the user's features and SMEMBERS on their watched titles) with the blocking client
the handler used to call on the event loop (the baseline), against the asyncio client it awaits
now. Alternating rounds in one process, so both see the same machine load. The loop is uvloop,
as under `netflix-assets serve` (uvicorn picks it when installed).

Needs the local Redis (`netflix-assets stack up redis`); writes two keys under bench:redis:*.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import uvloop

from resources.redis import RedisResource

FEATURES = {f"u_feature_{i}": repr(float(i)) for i in range(14)}
WATCHED = [f"title-{i}" for i in range(40)]


def percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return f"p50 {p50:.3f} ms, p90 {p90:.3f} ms, p99 {p99:.3f} ms"


async def main(rounds: int, per_round: int) -> None:
    resource = RedisResource()
    blocking, awaited = resource.client(), resource.async_client()
    user, seen = "bench:redis:user", "bench:redis:seen"
    blocking.delete(user, seen)
    blocking.hset(user, mapping=FEATURES)
    blocking.sadd(seen, *WATCHED)
    sync_times: list[float] = []
    async_times: list[float] = []
    try:
        for _ in range(rounds):
            for _ in range(per_round):
                started = time.perf_counter()
                pipe = blocking.pipeline(transaction=False)
                pipe.hgetall(user)
                pipe.smembers(seen)
                pipe.execute()
                sync_times.append(time.perf_counter() - started)
            for _ in range(per_round):
                started = time.perf_counter()
                apipe = awaited.pipeline(transaction=False)
                apipe.hgetall(user)
                apipe.smembers(seen)
                await apipe.execute()
                async_times.append(time.perf_counter() - started)
    finally:
        blocking.delete(user, seen)
        await awaited.aclose()
    ratio = np.median(async_times) / np.median(sync_times)
    print(f"blocking redis-py pipeline (baseline): {percentiles(sync_times)}")
    print(f"redis.asyncio pipeline, awaited:       {percentiles(async_times)}")
    print(f"p50 ratio asyncio / blocking: {ratio:.2f} ({len(sync_times)} round trips each)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args()
    uvloop.run(main(args.rounds, args.per_round))
