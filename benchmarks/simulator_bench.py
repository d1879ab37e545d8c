"""Simulator -> Kafka: events/s and peak memory, streaming order vs whole-day sort (baseline).

Each mode runs in its own process so its peak RSS is its own:
  - `bucketed`: the simulator as shipped (5-minute buckets, only open sessions in memory);
  - `whole-day`: the previous ordering, every session of the day generated and sorted at once.
Both produce the same events in the same order (checked here by a digest of the event ids)
to a fresh topic of the local broker (`netflix-assets stack up` first).

    .venv/bin/python benchmarks/simulator_bench.py --events 1000000 10000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from operator import itemgetter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from resources.kafka import KafkaResource  # noqa: E402
from streaming.produce import produce_simulated  # noqa: E402
from streaming.simulator import SimConfig, Simulator  # noqa: E402

EVENTS_PER_USER_DAY = 146  # what the simulator's defaults give
DAY = date(2026, 10, 1)


class WholeDaySimulator(Simulator):
    """The baseline: every session of the day in memory, one sort."""

    def _merged(self, starts: list[tuple[int, dict]]) -> Iterator[dict]:
        sessions = [sorted(self.session(u, at), key=itemgetter("_ms")) for at, u in starts]
        yield from sorted((e for s in sessions for e in s), key=itemgetter("_ms"))


def run_one(mode: str, events: int) -> dict:
    users = max(10, events // EVENTS_PER_USER_DAY)
    config = SimConfig(users=users, titles=max(50, users // 20), start=DAY)
    cls = WholeDaySimulator if mode == "whole-day" else Simulator
    digest = hashlib.blake2b(digest_size=8)
    ids = (e["event_id"].encode() for e in cls(config).events())
    for chunk in iter(lambda: b"".join(next(ids, b"") for _ in range(10_000)), b""):
        digest.update(chunk)
    kafka = KafkaResource()
    topic = f"bench-sim-{mode}-{int(time.time())}"
    report = produce_simulated(kafka, config, topic=topic, simulator=cls)
    kafka.admin().delete_topics([topic])
    return {
        "mode": mode,
        "events": report.produced,
        "seconds": report.seconds,
        "rate": report.rate,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "order_digest": digest.hexdigest(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--one", choices=["bucketed", "whole-day"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.events[0])))
        return 0
    for events in args.events:
        results = {}
        for mode in ("whole-day", "bucketed"):
            out = subprocess.run(
                [sys.executable, __file__, "--one", mode, "--events", str(events)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[mode] = json.loads(out.strip().splitlines()[-1])
        base, new = results["whole-day"], results["bucketed"]
        same = base["order_digest"] == new["order_digest"]
        print(f"~{events:,} events ({new['events']:,} messages), same order: {same}")
        for r in (base, new):
            print(
                f"  {r['mode']:>9}: {r['rate']:>9,.0f} messages/s to Kafka "
                f"({r['seconds']:.1f} s), peak RSS {r['peak_rss_mib']:,.0f} MiB"
            )
        print(
            f"  bucketed / whole-day: rate {new['rate'] / base['rate']:.2f}x, "
            f"peak memory {new['peak_rss_mib'] / base['peak_rss_mib']:.3f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
