"""Recommendation quality and cost on MovieLens-shaped synthetic data, model by model.

The data is generated, NOT MovieLens: MovieLens may not be redistributed and no dataset can be
downloaded here. Up to 1M interactions it is netflix_assets.recs.synthetic.movielens_like
(long-tail popularity, skewed user activity, mixed tastes, releases over time); above, where
that generator would draw users x titles numbers, synthetic.sampled_ratings (the same skews, no
release dates), which is for time and memory, not quality. At each size the benchmark runs what
`netflix-assets train` runs minus Spark and Dagster:

- `select`: every generator tuned on the validation split carved from training (the grids of
  selection.GRIDS), the ALS + item-item blend, MMR's curve; above
  selection.TUNING_MAX_INTERACTIONS on a seeded sample of whole users (printed);
- `fit`: what candidate_model and als_model fit on every interaction (the tuned ALS and the
  chosen item-item model);
- `evaluate`: every tuned model and the served pipeline (chosen generator -> MMR with
  `--mmr-lambda`, default 0.6; no ranker) refit on the training part and scored with full
  ranking on leave-latest-out (a sample of `--eval-users` test users);
- `temporal`: the same models and served path fit before the ranker's cutoff date (the latest
  20% of interactions after it) and scored on each user's new titles after it;
- `ncf` (`--ncf-epochs`, 0 to skip): NCF fit once on the training part and scored on the same
  test users, as ncf_model does after the release, off its path;
- with `--implicit`, the `implicit` library's ALS (the textbook baseline of issue 21) tuned on
  the same validation split over a 12-point grid, then scored on the same test users.

`--skip-eval` runs only `select` and `fit` (training time and memory at large sizes). It prints
HR@10 / NDCG@10 / coverage / diversity per model, wall and CPU time per step, and the peak
resident memory of the process (ru_maxrss). The ranker and the Spark features are not in it
(they need Spark): `time netflix-assets train` measures the whole. Run sizes in separate
processes to get each size's own peak: `--sizes 100000`, `--sizes 1000000`.

The MovieLens reader alone: `--write-csv /tmp/ratings.csv --rows 25000000` writes an
ML-25M-shaped ratings.csv (sampled_ratings), and `--read-csv /tmp/ratings.csv` (a fresh
process) reads it with recs.ratings.read_ratings and prints the time and peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd

from netflix_assets.recs import selection, synthetic, training, two_stage
from netflix_assets.recs.evaluation import leave_latest_out
from netflix_assets.recs.ncf import NcfConfig
from netflix_assets.recs.ratings import read_ratings

SHAPES = {  # interactions -> (users, titles), ratios near MovieLens 100k / 1M / 10M
    100_000: (943, 1_682),
    1_000_000: (6_040, 3_706),
    10_000_000: (69_878, 10_677),
    25_000_000: (162_541, 59_047),
}


SAMPLED_ABOVE = 1_000_000  # movielens_like up to here, sampled_ratings above


def raw_ratings(size: int, seed: int) -> pd.DataFrame:
    users, titles = SHAPES.get(size, (size // 100, max(size // 60, 200)))
    if size > SAMPLED_ABOVE:
        return synthetic.sampled_ratings(users, titles, size, seed=seed)
    return synthetic.movielens_like(users, titles, size, seed=seed)


def frame_of(size: int, seed: int) -> pd.DataFrame:
    raw = raw_ratings(size, seed)
    return pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(str),
            "title_id": raw["title_id"].astype(str),
            "ts": pd.to_datetime(raw["ts"], unit="s"),  # as training_interactions holds it
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


class Steps:
    """Wall and CPU seconds per step (CPU time is what contention on a shared host moves least;
    wall time above it is waiting for a core, or BLAS threads working in parallel)."""

    def __init__(self) -> None:
        self.times: dict[str, tuple[float, float]] = {}

    def __call__(self, name: str, work):
        wall, cpu = time.perf_counter(), time.process_time()
        out = work()
        self.times[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        w, c = self.times[name]
        print(f"  {name}: {w:.1f} s (CPU {c:.1f} s), peak RSS so far {peak:,.0f} MB", flush=True)
        return out

    def line(self) -> str:
        return ", ".join(f"{n} {w:.1f} s (CPU {c:.1f} s)" for n, (w, c) in self.times.items())


def fit_served(frame: pd.DataFrame, chosen: selection.Selection) -> None:
    """What candidate_model and als_model fit on every interaction after the choice."""
    uidx, tidx, _, _ = selection.index_maps(frame)
    weighted = selection.weighted_matrix(frame, uidx, tidx)
    selection.fit("als", chosen.best["als"], weighted)
    item = {"ease": "ease", "rp3b": "rp3b", "blend": chosen.best.get("blend", {}).get("with")}
    if (kind := item.get(chosen.generator)) is not None:
        selection.fit(kind, chosen.best[kind], weighted)


def _table(report: dict, recall: bool = False) -> None:
    for name, m in report.items():
        row = f"{m['hr@10']:7.3f} {m['ndcg@10']:8.3f} {m['coverage']:9.3f} {m['ild']:10.3f}"
        print(f"{name:22s} {row}" + (f"  recall@10 {m['recall@10']:.3f}" if recall else ""))


def run(size: int, args) -> None:
    steps = Steps()
    frame = steps("data", lambda: frame_of(size, args.seed))
    chosen = steps("select", lambda: selection.select(frame, max_users=args.eval_users))
    sample = chosen.sample
    print(
        f"  tuned on {sample['interactions']:,} of {sample['of_interactions']:,} interactions "
        f"({sample['users']:,} of {sample['of_users']:,} users); chosen {chosen.generator} "
        f"{chosen.best.get(chosen.generator)}",
        flush=True,
    )
    steps("fit", lambda: fit_served(frame, chosen))
    release = ("select", "fit")
    if not args.skip_eval:
        pipeline = two_stage.Pipeline(
            chosen.generator, use_ranker=False, mmr_lambda=args.mmr_lambda
        )
        report = steps(
            "evaluate",
            lambda: training.evaluate_release(frame, chosen, pipeline, max_users=args.eval_users),
        )
        cutoff = training.choose_cutoff(frame, frame["ts"].max().date())
        temporal = steps(
            "temporal",
            lambda: training.evaluate_temporal(
                frame, chosen, pipeline, cutoff, max_users=args.eval_users
            ),
        )
        release = ("select", "fit", "evaluate", "temporal")
    if args.ncf_epochs:
        config = NcfConfig(epochs=args.ncf_epochs)
        result = steps(
            "ncf", lambda: training.evaluate_ncf(frame, config, max_users=args.eval_users)
        )
        if not args.skip_eval:
            report[f"ncf ({args.ncf_epochs} epochs)"] = result.report
    if args.implicit and not args.skip_eval:
        t0 = time.perf_counter()
        params, report["implicit-als (tuned)"] = implicit_als(frame, args.eval_users)
        print(f"implicit ALS tuned: {params} in {time.perf_counter() - t0:.1f} s")
    print(
        f"\n{len(frame):,} interactions, {frame.user_id.nunique():,} users, "
        f"{frame.title_id.nunique():,} titles; chosen generator: {chosen.generator} "
        f"{chosen.best.get(chosen.generator)}"
    )
    if not args.skip_eval:
        sizes = report.pop("sizes")
        print(f"{int(sizes['users_held_out']):,} test users, leave-latest-out, full ranking")
        print(f"{'model':22s} {'HR@10':>7s} {'NDCG@10':>8s} {'coverage':>9s} {'diversity':>10s}")
        _table(report)
        later = temporal.pop("sizes")
        print(
            f"temporal protocol: fit before {cutoff}, {int(later['users_scored']):,} users "
            f"scored on their new titles after it ({int(later['future_rows']):,} interactions)"
        )
        _table(temporal, recall=True)
    print("MMR curve (validation):")
    for point in chosen.mmr_curve:
        print(
            f"  lambda {point['lambda']:.2f}: NDCG@10 {point['ndcg@10']:.4f} "
            f"coverage {point['coverage']:.3f} diversity {point['ild']:.3f}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = sum(steps.times[n][0] for n in release)
    cpu = sum(steps.times[n][1] for n in release)
    print(f"time: {steps.line()}")
    print(f"release path ({' + '.join(release)}): {wall:.1f} s wall (CPU {cpu:.1f} s)")
    print(f"peak RSS {peak:,.0f} MB; load average at the end {os.getloadavg()}")


def write_csv(path: str, rows: int, seed: int) -> None:
    started = time.perf_counter()
    raw = raw_ratings(rows, seed)
    synthetic.write_csv(raw, path)
    print(f"wrote {len(raw):,} ratings to {path} in {time.perf_counter() - started:.1f} s")


def read_csv(path: str) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    frame, bad = read_ratings(path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = os.path.getsize(path) / 2**20
    held = frame.memory_usage(deep=True).sum() / 2**20
    print(
        f"read {len(frame):,} ratings ({size:,.0f} MB file, {len(bad)} bad lines) in {wall:.1f} s "
        f"(CPU {cpu:.1f} s): frame {held:,.0f} MB ({held * 2**20 / max(len(frame), 1):.1f} "
        f"bytes a row), peak RSS {peak:,.0f} MB; load average {os.getloadavg()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--eval-users", type=int, default=5_000)
    parser.add_argument("--ncf-epochs", type=int, default=8)
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mmr-lambda", type=float, default=0.6)
    parser.add_argument("--skip-eval", action="store_true", help="select and fit only")
    parser.add_argument("--write-csv", metavar="PATH", help="write a ratings.csv of --rows")
    parser.add_argument("--rows", type=int, default=25_000_000)
    parser.add_argument("--read-csv", metavar="PATH", help="time read_ratings on this file")
    args = parser.parse_args()
    if args.write_csv:
        write_csv(args.write_csv, args.rows, args.seed)
    elif args.read_csv:
        read_csv(args.read_csv)
    else:
        for size in args.sizes:
            run(size, args)


if __name__ == "__main__":
    main()
