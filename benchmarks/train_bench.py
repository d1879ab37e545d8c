"""`netflix-assets train` end to end, as a user runs it, with where its time goes.

Each run gets its own temp dir: object store (NETFLIX_ASSETS_OBJECT_STORE), Dagster home
(DAGSTER_HOME, telemetry off) and a Redis db of its own (`--redis-db`, default 13, flushed
before the run: pick one nobody else uses), so runs neither see nor disturb other data. A run
imports the ratings file with `netflix-assets import-ratings` (timed apart, not in the figure),
then runs `netflix-assets train` and prints:

- the wall time of the whole `train` command; its CPU time summed over the process tree
  through the last step (the Spark JVM included, read from /proc at Dagster's step lines), and
  as wait4 (/usr/bin/time) counts it, which misses the JVM (not waited for); its peak RSS;
- the time from the command's start to Dagster's "Executing steps" (process start, imports,
  definitions with Spark's session starting beside them, finding the partition to train) and
  to the first step's start, with the process tree's CPU by then;
- each step's time as Dagster reports it and its process-tree CPU, and the time after the last
  step (printing, exit);
- the load average before and after.

`--imports` also prints the import time of the definitions (`python -X importtime`, the
largest cumulative entries) and `--spark-start` the time to start a Spark session, each in a
fresh process. The ratings file: `--csv PATH`, or `--rows N` (default 100,000) generated with
recs_bench's writer (MovieLens 100k's shape: 943 users, about 1,600 titles).

    .venv/bin/python benchmarks/train_bench.py --rows 100000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from host_check import redis_snapshot_warning
from proc_stats import tree_cpu_s

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("netflix-assets"))
STEP = re.compile(
    r" - ([a-z_]+) - STEP_SUCCESS - Finished execution of step \"[a-z_]+\" "
    r"in (?:(\d+)m)?([\d.]+)(m?s)"
)
STEP_START = re.compile(r" - ([a-z_]+) - STEP_START - ")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Run:
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0
    to_executing: float = float("nan")
    to_first_step: float = float("nan")
    after_steps: float = float("nan")
    steps: dict[str, float] = field(default_factory=dict)
    step_cpu: dict[str, float] = field(default_factory=dict)  # process tree, at log lines
    cpu_before_steps: float = float("nan")
    tree_cpu: float = float("nan")  # the process tree (JVM included) through the last step
    returncode: int = 0
    load_before: str = ""
    load_after: str = ""


def environment(root: Path, redis_db: int) -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from netflix_assets import settings

    dagster_home = root / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = dict(os.environ)
    env["NETFLIX_ASSETS_OBJECT_STORE"] = str(root / "objects")
    env["DAGSTER_HOME"] = str(dagster_home)
    env["NETFLIX_ASSETS_REDIS_URL"] = f"{settings.redis_url().rsplit('/', 1)[0]}/{redis_db}"
    return env


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def timed(command: list[str], env: dict[str, str], log: Path) -> Run:
    """Run `command`, stamping each output line as it arrives; CPU and peak RSS from wait4."""
    run = Run(load_before=load())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    last_step_end, step_cpu_start = None, 0.0
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.perf_counter() - started
            sink.write(line)
            if "ENGINE_EVENT - Executing steps" in line and run.to_executing != run.to_executing:
                run.to_executing = now
            if STEP_START.search(line):
                step_cpu_start = tree_cpu_s(proc.pid)
                if run.to_first_step != run.to_first_step:
                    run.to_first_step, run.cpu_before_steps = now, step_cpu_start
            if found := STEP.search(line):
                run.tree_cpu = tree_cpu_s(proc.pid)
                run.step_cpu[found.group(1)] = run.tree_cpu - step_cpu_start
                minutes, value, unit = found.group(2), float(found.group(3)), found.group(4)
                value = value / 1000 if unit == "ms" else value + 60 * int(minutes or 0)
                run.steps[found.group(1)] = value
                last_step_end = now
        run.returncode = proc.wait()
    run.wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run.rss_mb = after.ru_maxrss / 1024
    if last_step_end is not None:
        run.after_steps = run.wall - last_step_end
    run.load_after = load()
    return run


def one_run(csv: Path, redis_db: int, keep: Path | None) -> Run:
    root = Path(tempfile.mkdtemp(prefix="train_bench_", dir=keep))
    env = environment(root, redis_db)
    flush_redis(env["NETFLIX_ASSETS_REDIS_URL"])
    started = time.perf_counter()
    subprocess.run(
        [CLI, "import-ratings", str(csv)], env=env, cwd=ROOT, check=True, capture_output=True
    )
    print(f"  import-ratings {time.perf_counter() - started:.1f} s wall (not counted)")
    run = timed([CLI, "train"], env, root / "train.log")
    print(f"  log: {root / 'train.log'}")
    return run


def report(run: Run) -> None:
    steps = "  ".join(
        f"{name} {s:.1f} ({run.step_cpu.get(name, float('nan')):.1f})"
        for name, s in run.steps.items()
    )
    print(
        f"  train: {run.wall:.1f} s wall; CPU {run.tree_cpu:.1f} s for the process tree through "
        f"the last step (JVM included), {run.cpu:.1f} s as wait4 counts it (the process and the "
        f"children it waited for: not the JVM); peak RSS {run.rss_mb:,.0f} MB, exit "
        f"{run.returncode}; load {run.load_before} -> {run.load_after}\n"
        f"  before 'Executing steps' {run.to_executing:.1f} s, first step starts at "
        f"{run.to_first_step:.1f} s ({run.cpu_before_steps:.1f} s of CPU); steps "
        f"{sum(run.steps.values()):.1f} s ({sum(run.step_cpu.values()):.1f} s of CPU), "
        f"name wall (CPU): {steps}; "
        f"after the last step {run.after_steps:.1f} s"
    )


def imports() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import netflix_assets.definitions"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    total = next((us for us, name in rows if name.strip() == "netflix_assets.definitions"), 0)
    print(f"import netflix_assets.definitions: {total / 1e6:.2f} s; largest cumulative:")
    for us, name in sorted(rows, reverse=True)[1:13]:
        print(f"  {us / 1e6:6.2f} s {name}")


def spark_start() -> None:
    code = (
        "import time; t = time.perf_counter();"
        "from resources.spark import SparkResource; s = SparkResource().get_session();"
        "print(f'{time.perf_counter() - t:.1f}'); s.stop()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    print(f"Spark session start (imports included): {done.stdout.strip().splitlines()[-1]} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="a MovieLens-format ratings.csv")
    parser.add_argument("--rows", type=int, default=100_000, help="generated when no --csv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--keep", type=Path, help="where the runs' temp dirs go (kept)")
    parser.add_argument("--imports", action="store_true")
    parser.add_argument("--spark-start", action="store_true")
    args = parser.parse_args()
    from netflix_assets import settings

    if warning := redis_snapshot_warning(settings.redis_url()):
        print(warning)
    if args.imports:
        imports()
    if args.spark_start:
        spark_start()
    csv = args.csv
    if csv is None:
        csv = Path(tempfile.mkdtemp(prefix="train_bench_csv_")) / "ratings.csv"
        subprocess.run(
            [
                sys.executable,
                "benchmarks/recs_bench.py",
                "--write-csv",
                str(csv),
                "--rows",
                str(args.rows),
            ],
            cwd=ROOT,
            check=True,
        )
    runs = []
    for i in range(args.runs):
        print(f"run {i + 1}/{args.runs} ({csv}):")
        runs.append(one_run(csv, args.redis_db, args.keep))
        report(runs[-1])
    if runs:
        walls = sorted(r.wall for r in runs)
        cpus = sorted(r.tree_cpu for r in runs)
        print(
            f"train over {len(runs)} runs: wall median {statistics.median(walls):.1f} s, worst "
            f"{walls[-1]:.1f} s; process-tree CPU median {statistics.median(cpus):.1f} s, worst "
            f"{cpus[-1]:.1f} s; load {load()}"
        )


if __name__ == "__main__":
    main()
