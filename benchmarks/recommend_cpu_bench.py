"""CPU time of one in-process recommend() call (no HTTP, no Redis), for comparing two versions
of the serving code on a shared host: thread CPU time is what other work on the machine moves
least (wall time there is mostly waiting for a core).

Builds one synthetic release with serving_bench.write_release (random factors, 100k titles),
prepares it, and times `--requests` calls with 20 watched titles each; the first 500 are warm-up.
To compare with an older commit, run the same file from that commit's tree in alternation:

    git archive <commit> | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/benchmarks/recommend_cpu_bench.py --pipeline blend
    PYTHONPATH=. .venv/bin/python benchmarks/recommend_cpu_bench.py --pipeline blend
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving_bench

from netflix_assets.serving import prepared
from netflix_assets.serving.recommender import recommend
from resources.object_store import ObjectStoreResource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", choices=("als-ranker", "blend"), default="blend")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `netflix-assets serve` sets it
    root = tempfile.mkdtemp()
    try:
        store = ObjectStoreResource(root=root)
        release = serving_bench.write_release(store, "A", args.users, args.titles, 1, args.pipeline)
        bundle = prepared.load("A", release, store, Path(root) / "prepared")
        rng = np.random.default_rng(5)
        cpu = []
        for _ in range(args.requests):
            seen = [f"t{t}" for t in rng.integers(0, args.titles, 20)]
            user = f"u{int(rng.integers(args.users))}"
            started = time.thread_time()
            recommend(bundle, user, {"u_interactions_28d": "12"}, seen, 20)
            cpu.append(time.thread_time() - started)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ms = np.array(cpu[500:]) * 1000
    print(
        f"{args.pipeline}: recommend() CPU time p50 {np.percentile(ms, 50):.3f} ms, "
        f"p90 {np.percentile(ms, 90):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
