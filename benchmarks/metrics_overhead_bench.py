"""Cost of the recommendation service's Prometheus instrumentation, per request and per scrape.

The service (netflix_assets/serving/app.py) has no switch to turn metrics off, so this measures
what metrics add: per request, one `Histogram.observe` and one labelled `Counter.inc` (the same
metric definitions and buckets as the service); per scrape, `generate_latest` of that registry,
which holds the GIL while it runs. Baseline in the same run: the same loop without the metric
calls. Ratios are against the service's 10 ms p99 target.

    .venv/bin/python benchmarks/metrics_overhead_bench.py [--requests 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
OUTCOMES = ("ok", "cold_start", "bad_request", "unauthorized")
P99_TARGET_S = 0.010


def registry() -> tuple[CollectorRegistry, Histogram, Counter]:
    reg = CollectorRegistry()
    latency = Histogram("recs_request_seconds", "latency", buckets=BUCKETS, registry=reg)
    requests = Counter("recs_requests", "by outcome", ["outcome"], registry=reg)
    for name in (
        "recs_model_swaps",
        "recs_model_load_errors",
        "recs_model_loaded_timestamp_seconds",
    ):
        Gauge(name, name, registry=reg).set_function(lambda: 1.0)
    return reg, latency, requests


def per_request_s(n: int, with_metrics: bool) -> float:
    _, latency, requests = registry()
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        elapsed = time.perf_counter() - t0
        if with_metrics:
            latency.observe(elapsed + 0.003)
            requests.labels(OUTCOMES[i & 3]).inc()
    return (time.perf_counter() - started) / n


def scrape_s(n: int = 2000) -> float:
    reg, latency, requests = registry()
    for i in range(1000):
        latency.observe(0.003)
        requests.labels(OUTCOMES[i & 3]).inc()
    started = time.perf_counter()
    for _ in range(n):
        generate_latest(reg)
    return (time.perf_counter() - started) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    for run in range(1, args.repeat + 1):
        base = per_request_s(args.requests, False)
        with_metrics = per_request_s(args.requests, True)
        added = with_metrics - base
        scrape = scrape_s()
        print(
            f"run {run}: metrics add {added * 1e6:.2f} us/request "
            f"({added / P99_TARGET_S:.3%} of the 10 ms p99 target); "
            f"a scrape holds the GIL {scrape * 1e6:.0f} us ({scrape / P99_TARGET_S:.2%})"
        )


if __name__ == "__main__":
    main()
