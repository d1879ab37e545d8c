"""QoE stream benchmark: Kafka -> Flink (local mini-cluster) -> Kafka + Redis, on this machine.

Produces viewing events stamped with the wall clock at a target rate for a fixed time, runs the
QoE job and the Redis sink on fresh topics, and reports:
  - the producer's achieved rate and the job's consumer lag over time (growing lag = the job
    does not keep up; the Flink source commits offsets on each checkpoint, every 5 s here),
  - the delay from window end to the result on qoe-aggregates and to the alert on qoe-alerts
    (receive time - window end, p50/p99), which includes the watermark delay.

    .venv/bin/python benchmarks/flink_bench.py --rate 100000 --seconds 60

With --preload the events are produced first, with the job stopped, and the job then drains the
backlog: events / (time from the job running to lag 0) is the job's own capacity on this
machine, without the Python producer taking one of the two cores (in production players
produce from elsewhere). Window-delay figures are meaningless in that mode (every window is
already closed when it is computed) and are not printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from netflix_assets import settings  # noqa: E402
from netflix_assets.clients.kafka import KafkaSettings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host_check import redis_snapshot_warning  # noqa: E402
from proc_stats import tree_cpu_s  # noqa: E402

EVENT_MIX = [
    ("heartbeat", 86),
    ("playback_request", 4),
    ("start", 4),
    ("stall_start", 2),
    ("stall_end", 2),
    ("error", 1),
    ("stop", 1),
]
DEVICES = ["tv", "mobile", "web", "tablet", "console"]
COUNTRIES = ["US", "BR", "GB", "DE", "IN", "JP", "MX", "FR"]
CDNS = ["oca", "akamai", "fastly"]
WARM_UP_S = 60


def _template() -> str:
    return (
        '{{"schema_version":1,"event_id":"{eid}","session_id":"{sid}","user_id":"u{sid}",'
        '"profile_id":"p{sid}","title_id":"t{title}","device":"{device}","os":"x",'
        '"country":"{country}","cdn":"{cdn}","event_type":"{etype}","event_ts":"{ts}",'
        '"position_ms":0,"rendition":"1080p","bitrate_kbps":{bitrate},"buffer_ms":8000,'
        '"startup_ms":{startup},"stall_ms":{stall},"error_code":null}}'
    )


def _payload_pool(size: int = 65_536) -> list[tuple[bytes, bytes, bytes, bytes]]:
    """Events split around their two per-send fields (event id, event time): (head, middle,
    tail, key). Building the varied parts once keeps the load generator to a fraction of a
    core at 100k events/s, so it takes little from the job it measures on the same 2 cores."""
    template = _template()
    rng = random.Random(7)
    kinds = [k for k, w in EVENT_MIX for _ in range(w)]
    sessions = [
        (f"s{i}", rng.randrange(200), rng.choice(DEVICES), rng.choice(COUNTRIES), rng.choice(CDNS))
        for i in range(50_000)
    ]
    pool = []
    for n in range(size):
        sid, title, device, country, cdn = sessions[rng.randrange(len(sessions))]
        etype = kinds[rng.randrange(len(kinds))]
        value = template.format(
            eid="\x00",
            sid=sid,
            title=title,
            device=device,
            country=country,
            cdn=cdn,
            etype=etype,
            ts="\x01",
            bitrate=3000 + (n % 7) * 500,
            startup=(400 + n % 3000) if etype == "start" else "null",
            stall=(n % 2000) if etype == "stall_end" else "null",
        )
        head, rest = value.split("\x00")
        middle, tail = rest.split("\x01")
        pool.append((head.encode(), middle.encode(), tail.encode(), sid.encode()))
    return pool


def kafka_conf(bootstrap: str) -> dict:
    """librdkafka connection and SASL settings (netflix_assets.clients.kafka)."""
    return KafkaSettings.from_env(bootstrap_servers=bootstrap).confluent()


def produce(bootstrap: str, topic: str, rate: int, seconds: float, counter) -> None:
    """One producer process pacing batches every 10 ms; event_ts is the wall clock."""
    producer = Producer(
        {
            **kafka_conf(bootstrap),
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 2_000_000,
        }
    )
    pool = _payload_pool()
    mask = len(pool) - 1
    start = time.time()
    sent = 0
    while (now := time.time()) - start < seconds:
        due = int((now - start) * rate) - sent
        if due <= 0:
            time.sleep(0.002)
            continue
        stamp = datetime.fromtimestamp(now, tz=UTC)
        ts = (stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z").encode()
        for _ in range(min(due, rate // 50 + 1)):
            head, middle, tail, key = pool[sent & mask]
            value = b"".join((head, str(sent).encode(), middle, ts, tail))
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
            sent += 1
        producer.poll(0)
        counter.value = sent
    producer.flush(60)
    counter.value = sent


def committed_total(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    consumer = Consumer({**kafka_conf(bootstrap), "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        consumer.close()


def measure_results(bootstrap: str, topics: list[str], stop: threading.Event, out: dict) -> None:
    """Delay from window end to the moment a result is read here, per record kind."""
    consumer = Consumer(
        {
            **kafka_conf(bootstrap),
            "group.id": f"bench-reader-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    while not stop.is_set():
        for msg in consumer.consume(1000, timeout=0.2):
            if msg.error():
                continue
            received = time.time()
            record = json.loads(msg.value())
            end = datetime.fromisoformat(record["window_end"].replace("Z", "+00:00"))
            out.setdefault(record["kind"], []).append((end.timestamp(), received - end.timestamp()))
    consumer.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=100_000, help="target events/s")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--parallelism", type=int, default=2)
    p.add_argument("--qoe-window-ms", type=int, default=10_000)
    p.add_argument("--out-of-orderness-ms", type=int, default=2_000)
    p.add_argument("--preload", action="store_true", help="produce first, then time the drain")
    p.add_argument(
        "--flink-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the job (streaming.qoe_job --flink-conf), to compare settings",
    )
    p.add_argument(
        "--jvm-options",
        help="the job's local JVM options (streaming.qoe_job --jvm-options; default the job's "
        "own, -XX:+UseParallelGC; an empty string leaves the JVM's default collector, G1)",
    )
    args = p.parse_args()
    if warning := redis_snapshot_warning(settings.redis_url()):
        print(warning)
    bootstrap = settings.kafka_bootstrap()
    run = uuid.uuid4().hex[:8]
    topics = {k: f"bench-qoe-{k}-{run}" for k in ("events", "aggregates", "alerts")}
    admin = AdminClient(kafka_conf(bootstrap))
    for future in admin.create_topics(
        [
            NewTopic(topics["events"], 4, 1),
            NewTopic(topics["aggregates"], 1, 1),
            NewTopic(topics["alerts"], 1, 1),
        ]
    ).values():
        future.result(30)

    work = settings.state_dir() / "bench" / run
    work.mkdir(parents=True)
    group = f"bench-qoe-{run}"
    job_cmd = [
        str(REPO_ROOT / ".venv-flink/bin/python"),
        "-m",
        "streaming.qoe_job",
        f"--events-topic={topics['events']}",
        f"--aggregates-topic={topics['aggregates']}",
        f"--alerts-topic={topics['alerts']}",
        f"--group-id={group}",
        "--startup-mode=earliest-offset",
        f"--parallelism={args.parallelism}",
        f"--qoe-window-ms={args.qoe_window_ms}",
        f"--out-of-orderness-ms={args.out_of_orderness_ms}",
        "--allowed-lateness-ms=0",
        "--idle-timeout-ms=5000",
        "--min-attempts=5",
        "--max-error-rate=0.1",
        "--checkpoint-interval-ms=5000",
        f"--checkpoint-dir={work / 'checkpoints'}",
        "--restore=none",
        *(f"--flink-conf={item}" for item in args.flink_conf),
        *([f"--jvm-options={args.jvm_options}"] if args.jvm_options is not None else []),
    ]
    sink_cmd = [
        sys.executable,
        "-m",
        "streaming.flink.redis_sink",
        f"--topics={topics['aggregates']},{topics['alerts']}",
        f"--group-id=bench-sink-{run}",
    ]
    if args.preload:
        return drain(args, bootstrap, topics["events"], group, [job_cmd, sink_cmd], work)
    log = (work / "job.log").open("w")
    job = subprocess.Popen(job_cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    sink = subprocess.Popen(sink_cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    delays: dict[str, list[float]] = {}
    stop = threading.Event()
    reader = threading.Thread(
        target=measure_results,
        args=(bootstrap, [topics["aggregates"], topics["alerts"]], stop, delays),
    )
    try:
        deadline = time.time() + 120
        while "running job" not in (work / "job.log").read_text():
            if job.poll() is not None or time.time() > deadline:
                raise SystemExit(f"job did not start:\n{(work / 'job.log').read_text()[-3000:]}")
            time.sleep(0.5)
        reader.start()
        job_cpu_start = tree_cpu_s(job.pid)
        counter = mp.Value("q", 0)
        producer = mp.Process(
            target=produce, args=(bootstrap, topics["events"], args.rate, args.seconds, counter)
        )
        t0 = time.time()
        producer.start()
        samples = []
        while producer.is_alive() or time.time() - t0 < args.seconds + 30:
            time.sleep(5)
            produced = counter.value
            done = committed_total(bootstrap, topics["events"], group, 4)
            samples.append((round(time.time() - t0), produced, produced - done))
            print(f"t={samples[-1][0]:>4}s produced={produced:>9} job_lag={produced - done:>8}")
            if not producer.is_alive() and produced - done == 0:
                break
        producer.join()
        job_cpu = tree_cpu_s(job.pid) - job_cpu_start
        consumed = committed_total(bootstrap, topics["events"], group, 4)
        elapsed_produce = min(args.seconds, max(1e-9, time.time() - t0))
        time.sleep(3)
    finally:
        stop.set()
        for proc in (job, sink):
            proc.terminate()
            proc.wait(30)
    if reader.is_alive():
        reader.join(10)

    produced = counter.value
    print()
    print(f"machine: {mp.cpu_count()} cores; job parallelism {args.parallelism}")
    print(
        f"produced {produced} events in {args.seconds:.0f} s: {produced / elapsed_produce:,.0f}/s"
    )
    drained = [s for s in samples if s[0] > args.seconds and s[2] == 0]
    if drained:
        print(
            f"job caught up (lag 0) {drained[0][0] - args.seconds:.0f} s after the producer stopped"
        )
    steady = [s[2] for s in samples if s[0] <= args.seconds]
    if len(steady) >= 4:
        half = len(steady) // 2
        print(
            f"job lag while producing: first half mean {statistics.mean(steady[:half]):,.0f}, "
            f"second half mean {statistics.mean(steady[half:]):,.0f} events"
        )
    for kind, timed in sorted(delays.items()):
        values = [delay for _, delay in timed]
        print(
            f"{kind:>18}: {len(values):>6} results, window end -> result "
            f"p50 {pct(values, 0.5):.2f} s, p99 {pct(values, 0.99):.2f} s"
        )
    # The same delays without the windows that ended in the job's first minute of input, while
    # its JVM compiles the hot paths and falls behind (a one-off cost of every start).
    for kind, timed in sorted(delays.items()):
        steady = [delay for end, delay in timed if end >= t0 + WARM_UP_S]
        if steady:
            print(
                f"{kind:>18}: {len(steady):>6} results after the first {WARM_UP_S} s, "
                f"p50 {pct(steady, 0.5):.2f} s, p99 {pct(steady, 0.99):.2f} s"
            )
    print(f"(watermark delay {args.out_of_orderness_ms / 1000:.1f} s is part of each delay)")
    print(
        f"job CPU {job_cpu:.1f} s for {consumed:,} events consumed: "
        f"{consumed / max(job_cpu, 1e-9):,.0f} events per CPU second"
    )
    return 0


def drain(args, bootstrap: str, topic: str, group: str, cmds: list[list[str]], work: Path) -> int:
    """Produce the backlog, then start the job (and the Redis sink) and time the job to lag 0
    (offsets are committed on each checkpoint, so the end is known to within one checkpoint
    interval). Also prints the steady rate between 25% and 90% of the backlog, which leaves out
    the JVM's warm-up at the start and the last partitions finishing alone at the end."""
    job_cmd, sink_cmd = cmds
    counter = mp.Value("q", 0)
    producer = mp.Process(target=produce, args=(bootstrap, topic, args.rate, args.seconds, counter))
    producer.start()
    producer.join()
    produced = counter.value
    print(f"preloaded {produced:,} events")
    log = (work / "job.log").open("w")
    cmd = [c for c in job_cmd if not c.startswith("--checkpoint-interval-ms")]
    cmd.append("--checkpoint-interval-ms=1000")
    job = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    sink = subprocess.Popen(sink_cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    progress: list[tuple[float, int]] = []
    try:
        deadline = time.time() + 120
        while "running job" not in (work / "job.log").read_text():
            if job.poll() is not None or time.time() > deadline:
                raise SystemExit(f"job did not start:\n{(work / 'job.log').read_text()[-3000:]}")
            time.sleep(0.2)
        t0 = time.time()
        cpu0 = tree_cpu_s(job.pid)
        while True:
            time.sleep(1)
            done = committed_total(bootstrap, topic, group, 4)
            elapsed = time.time() - t0
            progress.append((elapsed, done))
            if done >= produced:
                job_cpu = tree_cpu_s(job.pid) - cpu0
                break
            if elapsed > 600:
                raise SystemExit(f"not drained after 600 s: {done:,} of {produced:,}")
            if int(elapsed) % 10 == 0:
                print(f"t={elapsed:5.0f}s consumed={done:>10,} rate so far {done / elapsed:,.0f}/s")
    finally:
        for proc in (job, sink):
            proc.terminate()
            proc.wait(30)
    print(f"machine: {mp.cpu_count()} cores; job parallelism {args.parallelism}")
    first = next(p for p in progress if p[1] >= 0.25 * produced)
    last = next(p for p in progress if p[1] >= 0.9 * produced)
    if last[0] > first[0]:
        print(
            f"steady rate from 25% to 90% of the backlog: "
            f"{(last[1] - first[1]) / (last[0] - first[0]):,.0f} events/s"
        )
    print(
        f"drained {produced:,} events in {elapsed:.1f} s from the job running: "
        f"{produced / elapsed:,.0f} events/s (checkpoint every 1 s)"
    )
    print(
        f"job CPU {job_cpu:.1f} s while draining: {produced / job_cpu:,.0f} events per CPU second"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
