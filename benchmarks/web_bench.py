"""The viewer web app under load: /v1/events throughput, the edge's segment rate and hit ratio,
and startup time in a real browser through the edge.

Starts its own app (a subprocess of this file, events to a topic of its own) and a private
nginx edge on free loopback ports, signs in an account it creates, and measures:

1. /v1/events: --concurrency connections post batches of 50 valid events for --seconds; events/s
   accepted, the app's CPU per event (its process's user + system time), and the topic's message
   count against the count the app accepted (zero loss). Baselines in the same run: a second app
   without metrics (create_app(metrics=False)) under the same load, the two taking turns, and
   the app's own parsing and validation of the same batches in process; with --baseline-tree,
   also the app of another checkout of this repository (the code before a change) in the same
   turns.
2. Edge: every segment and playlist of a published title fetched twice (the first pass fills the
   cache); requests/s of the second pass and the hit ratio from nginx's access log. Baseline:
   the same fetches from the origin directly (no edge), in the same run.
3. Startup: --startups playbacks in Debian's chromium (playwright, headless); the player's
   startup_ms (playback request to first frame) p50/p95.

Each part runs --runs times; the report gives the median and the worst run with the load
average. Needs the local stack (`netflix-assets stack up`) and a published title (`make demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import orjson
import psycopg

from netflix_assets import settings
from netflix_assets.clients import kafka as kafka_client
from netflix_assets.product import accounts
from netflix_assets.stack.edge import EdgeService, stats
from netflix_assets.web import viewers
from netflix_assets.web.events import check_events, parse_batch
from resources.kafka import KafkaResource

PASSWORD = "bench password 123"
BATCH = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_app(port: int, topic: str, key_hex: str, store: str, edge_url: str, metrics: str) -> None:
    """The app as the CLI runs it, with the bench's topic and key (child process mode)."""
    import uvicorn

    from netflix_assets.web.app import create_app
    from netflix_assets.web.config import WebConfig
    from netflix_assets.web.events import EventSink

    config = WebConfig(
        signing_key=bytes.fromhex(key_hex), object_store_root=store, edge_url=edge_url
    )
    sink = EventSink(kafka_client.client().producer(**{"linger.ms": 5}), topic)
    if metrics == "tree":  # another checkout's app, with its own defaults
        app = create_app(config, sink)
    else:
        app = create_app(config, sink, metrics=metrics == "on")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def start_app(
    port: int, topic: str, key: bytes, store: str, edge_url: str, metrics: str, tree: str = ""
):
    """The app in a child process; with `tree`, the web package of that checkout (its code
    first on the path, this stack's state and secrets)."""
    serve = [str(port), topic, key.hex(), store, edge_url, "tree" if tree else metrics]
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
        env["NETFLIX_ASSETS_STATE"] = str(settings.state_dir())
    child = subprocess.Popen([sys.executable, __file__, "--serve-app", *serve], env=env)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz").raise_for_status()
            return child
        except httpx.HTTPError:
            time.sleep(0.2)
    child.terminate()
    raise SystemExit(f"the app (metrics {metrics}) did not answer /healthz within 60 s")


def make_account(plan: str) -> tuple[str, str, str]:
    account_id = f"bench-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    with psycopg.connect(settings.postgres_dsn()) as conn:
        accounts.create_account(conn, account_id, f"{account_id}@example.com", "US", "USD", now)
        accounts.add_profile(conn, f"{account_id}-p", account_id, "Bench", "adult")
        accounts.subscribe(conn, account_id, plan, now)
        viewers.set_password(conn, account_id, PASSWORD)
    return account_id, f"{account_id}@example.com", f"{account_id}-p"


def sign_in(app_url: str, email: str, profile: str) -> httpx.Client:
    client = httpx.Client(base_url=app_url, timeout=60)
    for answer in (
        client.post("/signin", data={"email": email, "password": PASSWORD}),
        client.post(f"/profiles/{profile}"),
    ):
        if answer.status_code != 303:
            raise SystemExit(f"sign-in failed: {answer.status_code} {answer.text[:200]}")
    return client


def batches(account: str, profile: str, count: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for _ in range(count):
        session = f"bench-{uuid.uuid4().hex[:12]}"
        events = [
            {
                "schema_version": 1,
                "event_id": f"{session}-{i}",
                "session_id": session,
                "user_id": account,
                "profile_id": profile,
                "title_id": "bench-title",
                "device": "web",
                "os": "linux",
                "country": "US",
                "cdn": "local-edge",
                "event_type": "heartbeat",
                "event_ts": now,
                "position_ms": i * 1000,
                "rendition": "720p",
                "bitrate_kbps": 3000,
                "buffer_ms": 12000,
            }
            for i in range(BATCH)
        ]
        out.append(orjson.dumps({"events": events}))
    return out


async def post_events(app_url: str, cookie: str, bodies: list[bytes], seconds: float, conc: int):
    accepted = 0
    failed = 0
    stop_at = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json", "Cookie": f"na_session={cookie}"}

    async def worker(n: int, session: aiohttp.ClientSession) -> None:
        nonlocal accepted, failed
        i = n
        while time.perf_counter() < stop_at:
            async with session.post(
                f"{app_url}/v1/events", data=bodies[i % len(bodies)], headers=headers
            ) as answer:
                body = await answer.read()
                if answer.status == 200:
                    accepted += orjson.loads(body)["accepted"]
                else:
                    failed += 1
            i += conc

    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(n, session) for n in range(conc)))
        elapsed = time.perf_counter() - started
    return accepted, failed, elapsed


def topic_count(kafka: KafkaResource, topic: str) -> int:
    return sum(high - low for low, high in kafka.watermarks(topic).values())


def events_part(app_url: str, pid: int, cookie: str, kafka, topic, account, profile, args) -> dict:
    bodies = batches(account, profile, 200)
    before = topic_count(kafka, topic)
    cpu_before = cpu_seconds(pid)
    accepted, failed, elapsed = asyncio.run(
        post_events(app_url, cookie, bodies, args.seconds, args.concurrency)
    )
    app_cpu = cpu_seconds(pid) - cpu_before
    time.sleep(2)
    in_kafka = topic_count(kafka, topic) - before
    # Baseline in the same minute: parse + validate the same batches in process (no HTTP).
    from netflix_assets.web.viewers import Profile

    viewer = Profile(profile, account, "Bench", "adult", "US")
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < 2.0:
        check_events(parse_batch(bodies[n % len(bodies)], 500), viewer)
        n += 1
    in_process = n * BATCH / (time.perf_counter() - started)
    return {
        "events_per_s": accepted / elapsed,
        "app_cpu_us_per_event": app_cpu / accepted * 1e6 if accepted else None,
        "app_cores": app_cpu / elapsed,
        "accepted": accepted,
        "in_kafka": in_kafka,
        "failed_requests": failed,
        "validate_in_process_per_s": in_process,
        "load": load(),
    }


def newest_title(store: Path) -> tuple[str, str, list[str]] | None:
    """The newest published title (not TV-MA) whose files are in the delivery area: its id,
    its delivery prefix and its media files (segments and init files) below the prefix."""
    with psycopg.connect(settings.postgres_dsn()) as conn:
        rows = conn.execute(
            "SELECT v.title_id, v.version FROM catalog.title_versions v "
            "JOIN catalog.titles t USING (title_id) WHERE t.status = 'published' "
            "AND t.maturity_rating <> 'TV-MA' ORDER BY v.published_at DESC LIMIT 20"
        ).fetchall()
    for title_id, version in rows:
        folder = store / "delivery" / title_id / version
        if (folder / "master.m3u8").exists():
            files = sorted(
                str(p.relative_to(folder))
                for p in folder.rglob("*")
                if p.suffix in (".m4s", ".mp4")
            )
            return title_id, f"delivery/{title_id}/{version}", files
    return None


async def fetch_all(urls: list[str], conc: int) -> tuple[float, int]:
    queue = list(urls)
    bad = 0

    async def worker(session):
        nonlocal bad
        while queue:
            url = queue.pop()
            async with session.get(url) as answer:
                await answer.read()
                bad += answer.status != 200

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(conc)))
        return len(urls) / (time.perf_counter() - started), bad


def edge_part(client, title_id, prefix, files, edge_home, app_url, edge_key, args) -> dict:
    body = client.post("/v1/playback", json={"title_id": title_id, "codecs": args.codecs}).json()
    if "media_base" not in body:
        raise SystemExit(f"playback refused: {body}")
    urls = [f"{body['media_base']}{prefix}/{f}" for f in files] * args.repeat
    client.post(f"/v1/playback/{body['stream_id']}/stop")
    before = stats(edge_home)
    cold, _ = asyncio.run(fetch_all(urls[: len(files)], args.concurrency))
    warm, bad = asyncio.run(fetch_all(urls, args.concurrency))
    time.sleep(1.5)  # the access log is flushed every second
    after = stats(edge_home)
    hits, misses = after.hits - before.hits, after.misses - before.misses
    origin_urls = [f"{app_url}/origin/{prefix}/{f}" for f in files] * args.repeat

    async def origin_fetch():
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=args.concurrency),
            headers={"X-Edge-Key": edge_key},
        ) as session:
            queue = list(origin_urls)
            started = time.perf_counter()

            async def worker():
                while queue:
                    async with session.get(queue.pop()) as answer:
                        await answer.read()

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            return len(origin_urls) / (time.perf_counter() - started)

    origin = asyncio.run(origin_fetch())
    return {
        "title": title_id,
        "objects": len(files),
        "cold_req_per_s": cold,
        "warm_req_per_s": warm,
        "origin_req_per_s": origin,
        "hit_ratio": hits / (hits + misses) if hits + misses else 0.0,
        "errors": bad,
        "load": load(),
    }


def startup_part(app_url: str, email: str, profile: str, title_id: str, count: int) -> dict:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        return {"skipped": "chromium is not installed"}
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{app_url}/signin")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/profiles")
        page.click(f"button[data-profile='{profile}']")
        page.wait_for_url(f"{app_url}/")
        for _ in range(count):
            page.goto(f"{app_url}/watch/{title_id}")
            page.wait_for_function(
                "window.__player && (window.__player.startupMs !== null"
                " || window.__player.errors.length || window.__player.refused)",
                timeout=60_000,
            )
            state = page.evaluate("window.__player")
            if state["startupMs"] is None:
                raise SystemExit(f"playback failed: {state}")
            times.append(state["startupMs"])
            page.goto("about:blank")  # pagehide: the stream stops
        browser.close()
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
        "n": len(times),
        "load": load(),
    }


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def summarize(name: str, runs: list[dict], key: str, higher_is_better: bool = True) -> None:
    values = [r[key] for r in runs]
    worst = min(values) if higher_is_better else max(values)
    print(
        f"{name}: median {_num(statistics.median(values))}, worst {_num(worst)} "
        f"over {len(values)} runs; loads {[r['load'] for r in runs]}"
    )


def compare(label: str, runs: list[dict], baseline: list[dict]) -> None:
    """Per-run ratios against runs of the same turns."""

    def ratios(key: str) -> list[float]:
        return [round(a[key] / b[key], 3) for a, b in zip(runs, baseline, strict=True)]

    print(
        f"{label}, per run: events/s {ratios('events_per_s')}; "
        f"app CPU per event {ratios('app_cpu_us_per_event')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="passes over the title, warm part")
    parser.add_argument("--startups", type=int, default=10)
    parser.add_argument("--parts", default="events,edge,startup")
    parser.add_argument(
        "--codecs",
        nargs="*",
        default=["avc1.64001e,mp4a.40.2", "avc1.64001f,mp4a.40.2", "avc1.640028,mp4a.40.2"],
    )
    parser.add_argument(
        "--baseline-tree",
        default="",
        help="another checkout of this repository (git archive <commit> | tar -x -C DIR) whose "
        "app takes turns with this one in the events part",
    )
    parser.add_argument("--serve-app", nargs=6, metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_app:
        port, topic, key, store, edge_url, metrics = args.serve_app
        serve_app(int(port), topic, key, store, edge_url, metrics)
        return

    kafka = KafkaResource()
    topic = f"bench-web-events-{uuid.uuid4().hex[:8]}"
    kafka.ensure_topics([topic], partitions=4)
    key = os.urandom(32)
    store = settings.object_store_root()
    app_port, edge_port, bare_port = free_port(), free_port(), free_port()
    app_url, edge_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{edge_port}"
    parts = args.parts.split(",")
    children = [start_app(app_port, topic, key, store, edge_url, "on")]
    if "events" in parts:
        children.append(start_app(bare_port, topic, key, store, edge_url, "off"))
    tree_port = free_port()
    if "events" in parts and args.baseline_tree:
        tree = str(Path(args.baseline_tree).resolve())
        children.append(start_app(tree_port, topic, key, store, edge_url, "", tree))
    edge_home = Path(tempfile.mkdtemp(prefix="web-bench-edge-"))
    edge_home.chmod(0o755)  # nginx's workers run as nobody under root
    edge = EdgeService(home=edge_home, port=edge_port, app_port=app_port, signing_key=key)
    try:
        edge.up()
        account, email, profile = make_account("premium")
        client = sign_in(app_url, email, profile)
        cookie = client.cookies["na_session"]
        results: dict[str, list[dict]] = {p: [] for p in parts}
        results["events_off"], results["events_tree"] = [], []
        title = newest_title(Path(store))
        apps = {"events": (app_url, children[0].pid)}
        if "events" in parts:
            apps["events_off"] = (f"http://127.0.0.1:{bare_port}", children[1].pid)
        if len(children) == 3:
            apps["events_tree"] = (f"http://127.0.0.1:{tree_port}", children[2].pid)
        for run in range(args.runs):
            # The apps take turns going first.
            order = list(apps)[run % len(apps) :] + list(apps)[: run % len(apps)]
            for name in order if "events" in parts else []:
                url, pid = apps[name]
                measured = events_part(url, pid, cookie, kafka, topic, account, profile, args)
                results[name].append(measured)
                print(f"run {run + 1} {name}: {json.dumps(measured)}", flush=True)
            if "edge" in parts and title:
                from netflix_assets.web.tokens import origin_key

                shutil.rmtree(edge_home / "cache", ignore_errors=True)
                edge.down()
                edge.up()
                results["edge"].append(
                    edge_part(client, *title, edge_home, app_url, origin_key(key), args)
                )
                print(f"run {run + 1} edge: {json.dumps(results['edge'][-1])}", flush=True)
            if "startup" in parts and title:
                results["startup"].append(
                    startup_part(app_url, email, profile, title[0], args.startups)
                )
                print(f"run {run + 1} startup: {json.dumps(results['startup'][-1])}", flush=True)
        if results.get("events"):
            on, off, tree = results["events"], results["events_off"], results["events_tree"]
            summarize("/v1/events events/s (batches of 50)", on, "events_per_s")
            summarize("  app CPU us per event", on, "app_cpu_us_per_event", False)
            for label, runs in (("without metrics", off), ("baseline tree", tree)):
                if runs:
                    summarize(f"  {label}: events/s", runs, "events_per_s")
                    cpu = "app_cpu_us_per_event"
                    summarize(f"  {label}: app CPU us per event", runs, cpu, False)
                    compare(f"  this app / {label}", on, runs)
            lost = [r["accepted"] - r["in_kafka"] for r in on + off + tree]
            print(f"  accepted minus in Kafka per run (with metrics, without, baseline): {lost}")
        if results.get("edge"):
            summarize("edge warm segment req/s", results["edge"], "warm_req_per_s")
            summarize("origin direct req/s (baseline)", results["edge"], "origin_req_per_s")
            summarize("edge hit ratio", results["edge"], "hit_ratio")
        if results.get("startup") and "p50_ms" in results["startup"][0]:
            summarize("startup p50 ms", results["startup"], "p50_ms", higher_is_better=False)
            summarize("startup p95 ms", results["startup"], "p95_ms", higher_is_better=False)
        if title is None:
            print("no published title in the delivery area: edge and startup parts skipped")
    finally:
        edge.down()
        for child in children:
            child.terminate()
            child.wait(30)
        shutil.rmtree(edge_home, ignore_errors=True)
        kafka.admin().delete_topics([topic])


if __name__ == "__main__":
    main()
