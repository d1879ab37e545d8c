"""A real browser (Debian's chromium through playwright, headless, muted autoplay) signs in,
plays a title the video pipeline published through the caching edge, and reports its events.

Skipped, with the reason, only where chromium is not installed (`make bootstrap` installs it).
Set NETFLIX_ASSETS_WEB_SCREENSHOTS=<folder> to keep a screenshot of each page (docs/web/).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import PASSWORD, Viewer, WebStack

from netflix_assets import settings
from netflix_assets.stack.edge import stats
from resources.kafka import KafkaResource

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed: `make bootstrap` as root (apt-get install "
        "chromium); playwright drives it with executable_path and downloads no browser",
    ),
]
SHOTS = os.environ.get("NETFLIX_ASSETS_WEB_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        yield chromium
        chromium.close()


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def sign_in(page, web: WebStack, viewer: Viewer, profile: str) -> None:
    page.goto(f"{web.app_url}/signin")
    shot(page, "signin")
    page.fill("input[name=email]", viewer.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/profiles")
    shot(page, "profiles")
    page.click(f"button[data-profile='{profile}']")
    page.wait_for_url(f"{web.app_url}/")


def watch(page, web: WebStack, title_id: str) -> None:
    page.goto(f"{web.app_url}/watch/{title_id}?heartbeat_ms=1000&flush_ms=500")


def events_of(kafka: KafkaResource, topic: str, session_id: str, since_ms: int) -> list[dict]:
    values = (json.loads(v) for v in kafka.read_since(topic, since_ms, read_committed=False))
    return [e for e in values if e["session_id"] == session_id]


def play_until_stopped(browser, web, viewer, title_id, kafka) -> tuple[dict, list[dict]]:
    """Play 4 s, leave the page (the player sends stop and ends the stream); the player's
    state and the session's events once its stop is in Kafka."""
    since = int(time.time() * 1000) - 1000
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, web, viewer, viewer.adult)
    watch(page, web, title_id)
    page.wait_for_function("document.getElementById('video').currentTime > 4", timeout=90_000)
    state = page.evaluate("window.__player")
    page.goto("about:blank")
    context.close()
    deadline = time.monotonic() + 30
    while True:
        events = events_of(kafka, web.topic, state["sessionId"], since)
        if "stop" in {e["event_type"] for e in events}:
            return state, events
        assert time.monotonic() < deadline, "the player's stop event never reached Kafka"
        time.sleep(1)


def test_a_published_title_plays_through_the_edge_and_reports_events(
    browser, web, viewer, published_title, kafka_resource
):
    since = int(time.time() * 1000) - 1000
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, web, viewer, viewer.adult)
    shot(page, "home")
    page.goto(f"{web.app_url}/title/{published_title}")
    shot(page, "title")
    watch(page, web, published_title)
    # Past several 2 s segments, and the frames were decoded, not just downloaded.
    page.wait_for_function("document.getElementById('video').currentTime > 7", timeout=90_000)
    shot(page, "player")
    state = page.evaluate("window.__player")
    quality = page.evaluate(
        "(() => { const q = document.getElementById('video').getVideoPlaybackQuality();"
        " return [q.totalVideoFrames, q.droppedVideoFrames]; })()"
    )
    assert state["errors"] == [] and state["refused"] is None
    assert state["fragmentsLoaded"] >= 4 and state["startupMs"] > 0
    assert quality[0] >= 150, quality  # 7 s at 30 fps, minus what was dropped
    assert page.evaluate("document.getElementById('video').error") is None
    assert stats(web.edge_home).requests >= 4

    # A second browser over the Basic plan's one stream is refused with the reason. The first
    # is paused, not ended (its end would stop its stream and free the plan's one screen).
    page.evaluate("document.getElementById('video').pause()")
    other = browser.new_context()
    second = other.new_page()
    sign_in(second, web, viewer, viewer.adult)
    watch(second, web, published_title)
    second.wait_for_function("window.__player && window.__player.refused !== null", timeout=60_000)
    assert second.evaluate("window.__player.refused.status") == 409
    assert "1 screen at a time" in second.inner_text("#status")
    other.close()

    page.evaluate("window.__flushEvents()")
    session = state["sessionId"]
    deadline = time.monotonic() + 30
    while True:
        events = events_of(kafka_resource, web.topic, session, since)
        kinds = {e["event_type"] for e in events}
        if {"playback_request", "start", "heartbeat"} <= kinds or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"playback_request", "start", "heartbeat"} <= kinds, kinds
    start = next(e for e in events if e["event_type"] == "start")
    assert start["startup_ms"] == state["startupMs"] and start["rendition"].endswith("p")
    assert all(e["profile_id"] == viewer.adult and e["device"] == "web" for e in events)
    context.close()


def test_a_throttled_network_switches_down_and_stalls_and_reports_it(
    browser, web, viewer, published_title, kafka_resource
):
    """The DevTools protocol throttles the page's network below the lowest rung: hls.js
    switches down and the video stalls; when the network recovers the stall ends. The events
    (rendition_change, stall_start, stall_end with stall_ms) reach Kafka."""
    since = int(time.time() * 1000) - 1000
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, web, viewer, viewer.adult)
    page.goto(
        f"{web.app_url}/watch/{published_title}?heartbeat_ms=1000&flush_ms=500&max_buffer_s=3"
    )
    page.wait_for_function("document.getElementById('video').currentTime > 1", timeout=90_000)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    # 1.2 Mbit/s: under the top rungs (ABR must switch down) and, with a 3 s buffer, too slow
    # to keep playing through the switch.
    slow = {"offline": False, "latency": 100, "downloadThroughput": 150_000}
    cdp.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": 150_000})
    page.wait_for_function(
        "window.__player.stalls > 0 && window.__player.renditionChanges > 0", timeout=120_000
    )
    fast = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", fast)
    page.wait_for_function("window.__player.stallsEnded > 0", timeout=90_000)
    state = page.evaluate("window.__player")
    assert state["errors"] == [] and state["renditionChanges"] >= 1, state
    page.evaluate("window.__flushEvents()")
    deadline = time.monotonic() + 30
    wanted = {"rendition_change", "stall_start", "stall_end"}
    while True:
        events = events_of(kafka_resource, web.topic, state["sessionId"], since)
        kinds = {e["event_type"] for e in events}
        if wanted <= kinds or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert wanted <= kinds, kinds
    stall_end = next(e for e in events if e["event_type"] == "stall_end")
    assert stall_end["stall_ms"] > 0
    context.close()


def test_the_browsers_events_become_a_session_in_silver_and_gold(
    browser, web, viewer, published_title, kafka_resource, spark_resource, tmp_path
):
    """What the player reported goes through the lake like any other event: bronze from the
    topic, silver, the sessions (with the startup time the browser measured) and gold."""
    from dagster import DagsterInstance, materialize
    from deltalake import DeltaTable

    from assets.lake import bronze_viewing_events, gold_tables, silver_events
    from assets.lake import silver_playback_sessions as sessions_asset
    from resources.object_store import ObjectStoreResource
    from schema import tables

    state, _ = play_until_stopped(browser, web, viewer, published_title, kafka_resource)

    store = ObjectStoreResource(root=str(tmp_path / "lake"))
    resources = {"kafka": kafka_resource, "spark": spark_resource, "object_store": store}
    day = datetime.now(UTC).date().isoformat()
    bronze = materialize(
        [bronze_viewing_events],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"bronze_viewing_events": {"config": {"topic": web.topic}}}},
    )
    assert bronze.success
    chain = materialize(
        [bronze_viewing_events, silver_events, sessions_asset, gold_tables],
        selection=[
            "silver_viewing_events",
            "silver_quarantine",
            "silver_playback_sessions",
            "gold_title_daily",
            "gold_qoe_daily",
            "gold_user_daily",
        ],
        partition_key=day,
        resources=resources,
        instance=DagsterInstance.ephemeral(),
    )
    assert chain.success
    sessions = DeltaTable(store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)).to_pyarrow_table()
    mine = [s for s in sessions.to_pylist() if s["session_id"] == state["sessionId"]]
    assert len(mine) == 1, mine
    session = mine[0]
    assert session["started"] and not session["failed"]
    assert session["startup_ms"] == state["startupMs"] and session["device"] == "web"
    assert session["title_id"] == published_title and session["profile_id"] == viewer.adult
    assert session["watched_ms"] >= 3000
    gold = DeltaTable(store.table_uri(tables.GOLD_TITLE_DAILY)).to_pyarrow_table().to_pylist()
    title_rows = [r for r in gold if r["title_id"] == published_title]
    assert title_rows and sum(r["views"] for r in title_rows) >= 1


FLINK_PYTHON = settings.REPO_ROOT / ".venv-flink" / "bin" / "python"


def test_the_browsers_events_land_in_the_flink_jobs_qoe_window(
    browser, web, viewer, published_title, kafka_resource, tmp_path
):
    """The QoE job (PyFlink, bounded over a topic holding this playback's events) puts the
    session in a window of its title, device web, the edge's cdn and the viewer's country,
    with the startup time the browser measured."""
    if not FLINK_PYTHON.is_file():
        pytest.skip(f"{FLINK_PYTHON} is missing: run scripts/bootstrap_flink.sh")
    state, events = play_until_stopped(browser, web, viewer, published_title, kafka_resource)

    # One partition, in event time order: the watermark then moves as in production.
    suffix = uuid.uuid4().hex[:8]
    names = {k: f"test-web-qoe-{k}-{suffix}" for k in ("events", "aggregates", "alerts")}
    kafka_resource.ensure_topics(list(names.values()), partitions=1)
    producer = kafka_resource.producer()
    for event in sorted(events, key=lambda e: e["event_ts"]):
        producer.produce(names["events"], json.dumps(event).encode(), event["session_id"].encode())
    assert producer.flush(30) == 0
    log = tmp_path / "qoe_job.log"
    with log.open("w") as out:
        job = subprocess.run(
            [
                str(FLINK_PYTHON),
                "-m",
                "streaming.qoe_job",
                f"--bootstrap-servers={settings.kafka_bootstrap()}",
                f"--events-topic={names['events']}",
                f"--aggregates-topic={names['aggregates']}",
                f"--alerts-topic={names['alerts']}",
                f"--group-id=web-qoe-{suffix}",
                f"--checkpoint-dir={tmp_path / 'checkpoints'}",
                "--startup-mode=earliest-offset",
                "--bounded",
                "--watermark-emit=on-event",
                "--restore=none",
                "--checkpoint-interval-ms=1000",
            ],
            cwd=settings.REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    assert job.returncode == 0, log.read_text()[-4000:]
    records = [json.loads(v) for v in kafka_resource.read_since(names["aggregates"], 0)]
    windows = [r for r in records if r["kind"] == "qoe_window" and r["title_id"] == published_title]
    assert len(windows) >= 1, records
    assert {(w["device"], w["cdn"], w["country"]) for w in windows} == {
        ("web", web.config.cdn, "US")
    }
    assert sum(w["attempts"] for w in windows) == 1 and sum(w["starts"] for w in windows) == 1
    started = next(w for w in windows if w["starts"] == 1)
    assert started["startup_p50_ms"] == state["startupMs"]
