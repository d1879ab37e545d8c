"""Recommendation quality and cost on MovieLens-shaped synthetic data, model by model.

The data is generated (netflix_assets.recs.synthetic.movielens_like: long-tail popularity,
skewed user activity, mixed tastes, releases over time), NOT MovieLens: MovieLens may not be
redistributed and no dataset can be downloaded here. At each size the benchmark runs what
`netflix-assets train` runs minus Spark and Dagster:

- `select`: every generator tuned on the validation split carved from training (the grids of
  selection.GRIDS), the ALS + item-item blend, MMR's curve;
- `evaluate`: every tuned model, NCF (`--ncf-epochs`, 0 to skip) and the served pipeline
  (chosen generator -> MMR with `--mmr-lambda`, default 0.6 as in ModelConfig; no ranker)
  refit on the training part and scored with full ranking on leave-latest-out (a sample of
  `--eval-users` test users);
- with `--implicit`, the `implicit` library's ALS (the textbook baseline of issue 21) tuned on
  the same validation split over a 12-point grid, then scored on the same test users.

It prints HR@10 / NDCG@10 / coverage / diversity per model, time per step, and the peak
resident memory of the process (ru_maxrss, after each size). Run sizes in separate processes
to get each size's own peak: `--sizes 100000`, `--sizes 1000000`.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from netflix_assets.recs import selection, synthetic, training, two_stage
from netflix_assets.recs.evaluation import leave_latest_out
from netflix_assets.recs.ncf import NcfConfig

SHAPES = {  # interactions -> (users, titles), ratios near MovieLens 100k / 1M / 10M
    100_000: (943, 1_682),
    1_000_000: (6_040, 3_706),
    10_000_000: (69_878, 10_677),
}


def frame_of(size: int, seed: int) -> pd.DataFrame:
    users, titles = SHAPES.get(size, (size // 100, max(size // 60, 200)))
    raw = synthetic.movielens_like(users, titles, size, seed=seed)
    return pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(str),
            "title_id": raw["title_id"].astype(str),
            "ts": raw["ts"],
            "weight": raw["rating"] / 5.0,
        }
    )


def implicit_als(frame: pd.DataFrame, eval_users: int) -> tuple[dict, dict]:
    """(best params, test metrics) of implicit's ALS tuned on the inner validation split."""
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    outer = leave_latest_out(frame)
    inner = leave_latest_out(outer.train)
    uidx, tidx, _, _ = selection.index_maps(frame)

    def score(task: selection.Task, params: dict) -> dict:
        model = AlternatingLeastSquares(
            factors=params["factors"],
            regularization=params["reg"],
            alpha=params["alpha"],
            iterations=15,
            random_state=0,
        )
        with threadpool_limits(1, "blas"):
            model.fit(task.weighted.tocsr().astype(np.float32), show_progress=False)
        fitted = selection.Fitted(
            "implicit", params, factors=(model.user_factors, model.item_factors)
        )
        return selection.list_report(selection.top_lists(fitted, task), task)

    grid = [
        {"factors": f, "reg": r, "alpha": a}
        for f in (32, 64)
        for r in (0.1, 1.0)
        for a in (1.0, 10.0, 40.0)
    ]
    val = selection.Task.of(inner, uidx, tidx, eval_users)
    best = max(grid, key=lambda p: score(val, p)["ndcg@10"])
    return best, score(selection.Task.of(outer, uidx, tidx, eval_users), best)


def run(size: int, args) -> None:
    started = time.perf_counter()
    frame = frame_of(size, args.seed)
    made = time.perf_counter() - started
    t0 = time.perf_counter()
    chosen = selection.select(frame, max_users=args.eval_users)
    t_select = time.perf_counter() - t0
    pipeline = two_stage.Pipeline(chosen.generator, use_ranker=False, mmr_lambda=args.mmr_lambda)
    ncf = NcfConfig(epochs=args.ncf_epochs) if args.ncf_epochs else None
    t0 = time.perf_counter()
    report = training.evaluate_release(frame, chosen, pipeline, ncf, max_users=args.eval_users)
    t_eval = time.perf_counter() - t0
    if args.implicit:
        t0 = time.perf_counter()
        params, report["implicit-als (tuned)"] = implicit_als(frame, args.eval_users)
        print(f"implicit ALS tuned: {params} in {time.perf_counter() - t0:.1f} s")
    sizes = report.pop("sizes")
    print(
        f"\n{len(frame):,} interactions, {frame.user_id.nunique():,} users, "
        f"{frame.title_id.nunique():,} titles; {int(sizes['users_held_out']):,} test users; "
        f"chosen generator: {chosen.generator} {chosen.best.get(chosen.generator)}"
    )
    print(f"{'model':22s} {'HR@10':>7s} {'NDCG@10':>8s} {'coverage':>9s} {'diversity':>10s}")
    for name, m in report.items():
        row = f"{m['hr@10']:7.3f} {m['ndcg@10']:8.3f} {m['coverage']:9.3f} {m['ild']:10.3f}"
        print(f"{name:22s} {row}")
    print("MMR curve (validation):")
    for point in chosen.mmr_curve:
        print(
            f"  lambda {point['lambda']:.2f}: NDCG@10 {point['ndcg@10']:.4f} "
            f"coverage {point['coverage']:.3f} diversity {point['ild']:.3f}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"time: data {made:.1f} s, select (tuning) {t_select:.1f} s, "
        f"evaluate {t_eval:.1f} s; peak RSS {peak:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--eval-users", type=int, default=5_000)
    parser.add_argument("--ncf-epochs", type=int, default=5)
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mmr-lambda", type=float, default=0.6)
    args = parser.parse_args()
    for size in args.sizes:
        run(size, args)


if __name__ == "__main__":
    main()
