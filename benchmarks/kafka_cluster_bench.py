"""Kafka brokers' CPU per event: the simulator producing to the three-broker cluster, replication 3
against replication 1 in the same run.

A private three-node cluster (netflix_assets/stack/kafka_cluster.py: KRaft, SASL/SCRAM, on free
loopback ports, in a temporary folder) takes the same simulated day twice per run, through the
project's producer (idempotent, acks=all, lz4): once into a topic with replication 3 and
min.insync.replicas=2, once into one with replication 1. The three broker JVMs' CPU seconds
(/proc) over each production give events per broker CPU second, the figure docs/SCALE.md's
capacity model sizes brokers with; replication 1 on the same brokers in the same run is the
baseline, so the ratio says what the two extra copies cost. The order alternates between runs.
The load average is printed with each run; the summary gives the median and the worst.

    .venv/bin/python benchmarks/kafka_cluster_bench.py --events 500000 --runs 3
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lake_bench import EVENTS_PER_USER_DAY, size_arguments  # noqa: E402
from proc_stats import process_cpu_s  # noqa: E402

from netflix_assets.stack.kafka_cluster import (  # noqa: E402
    MIN_INSYNC_REPLICAS,
    KafkaCluster,
    free_ports,
)
from streaming.produce import produce_simulated  # noqa: E402
from streaming.simulator import SimConfig  # noqa: E402

DAY = date(2026, 10, 1)
PARTITIONS = 6
"""Two leaders per broker, so replication 1 spreads its writes over all three."""


def produce_once(cluster: KafkaCluster, config: SimConfig, replication: int) -> dict[str, Any]:
    client = cluster.client()
    topic = f"bench-kafka-rf{replication}-{uuid.uuid4().hex[:8]}"
    min_isr = str(min(MIN_INSYNC_REPLICAS, replication))
    client.ensure_topics([topic], PARTITIONS, replication, {"min.insync.replicas": min_isr})
    pids = [node.pid() for node in cluster.nodes]
    brokers_before = sum(process_cpu_s(pid) for pid in pids)
    own_before, wall_before = os.times(), time.perf_counter()
    report = produce_simulated(client, config, topic=topic)
    wall_s = time.perf_counter() - wall_before
    own_after = os.times()
    broker_cpu_s = sum(process_cpu_s(pid) for pid in pids) - brokers_before
    admin = client.admin()  # held until the deletion is done: a dropped handle cancels it
    for future in admin.delete_topics([topic]).values():
        future.result(30)
    producer_cpu_s = (own_after.user + own_after.system) - (own_before.user + own_before.system)
    return {
        "events": report.produced,
        "wall_s": wall_s,
        "broker_cpu_s": broker_cpu_s,
        "producer_cpu_s": producer_cpu_s,
    }


def main() -> None:
    args = size_arguments(__doc__.splitlines()[0], 500_000)
    users = args.events // EVENTS_PER_USER_DAY
    config = SimConfig(users=users, titles=max(50, users // 20), start=DAY)
    per_event: dict[int, list[float]] = {3: [], 1: []}
    ratios = []
    with KafkaCluster(Path(tempfile.mkdtemp(prefix="kafka-bench-")), free_ports()) as cluster:
        for index in range(1, args.runs + 1):
            load = os.getloadavg()
            order = (3, 1) if index % 2 else (1, 3)
            results = {rf: produce_once(cluster, config, rf) for rf in order}
            print(
                f"run {index}: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} before, "
                f"{os.getloadavg()[0]:.2f} after; order replication {order[0]} then {order[1]}"
            )
            for rf in (3, 1):
                r = results[rf]
                rate = r["events"] / r["broker_cpu_s"]
                per_event[rf].append(rate)
                print(
                    f"  replication {rf}: {r['events']:,} events in {r['wall_s']:.1f} s "
                    f"({r['events'] / r['wall_s']:,.0f}/s); brokers {r['broker_cpu_s']:.1f} CPU s "
                    f"= {rate:,.0f} events per broker CPU second; producer "
                    f"{r['producer_cpu_s']:.1f} CPU s"
                )
            ratios.append(results[3]["broker_cpu_s"] / results[1]["broker_cpu_s"])
            print(f"  broker CPU, replication 3 / replication 1: {ratios[-1]:.2f}x")
    print(f"summary over {args.runs} runs: median (worst)")
    for rf in (3, 1):
        rates = per_event[rf]
        print(
            f"  replication {rf}: {statistics.median(rates):,.0f} ({min(rates):,.0f}) "
            "events per broker CPU second"
        )
    print(f"  replication 3 / 1 broker CPU: {statistics.median(ratios):.2f}x ({max(ratios):.2f}x)")


if __name__ == "__main__":
    main()
