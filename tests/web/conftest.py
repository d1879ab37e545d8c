"""The web app, its caching edge and a published title, on the real local stack.

One app (uvicorn in a thread, its own signing key) and one private edge (nginx on a free port,
its own cache under tmp) per test session; events go to a topic of their own. The title is
published by the video pipeline itself (12 s, 2 s segments) into a private object store.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from netflix_assets import settings
from netflix_assets.product import accounts
from netflix_assets.stack.edge import EdgeService
from netflix_assets.video.testmedia import Shape, make_clip
from netflix_assets.web import viewers
from netflix_assets.web.app import create_app
from netflix_assets.web.config import WebConfig
from netflix_assets.web.events import EventSink
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.postgres import PostgresResource

PASSWORD = "correct horse battery staple"
VIDEO_TESTS = Path(__file__).resolve().parent.parent / "video" / "test_video_pipeline.py"


def viewing_event(account_id: str, profile_id: str, /, **changes) -> dict:
    """A valid heartbeat of the viewing-event contract for this account and profile."""
    return {
        "schema_version": 1,
        "event_id": "e1",
        "session_id": "s1",
        "user_id": account_id,
        "profile_id": profile_id,
        "title_id": "t",
        "device": "web",
        "os": "linux",
        "country": "US",
        "cdn": "local-edge",
        "event_type": "heartbeat",
        "event_ts": "2026-12-03T10:00:00.123Z",
        "position_ms": 1000,
        **changes,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def video_pipeline_runner():
    """run_pipeline of the video tests, loaded from its file (test folders are not packages)."""
    spec = importlib.util.spec_from_file_location("web_video_pipeline", VIDEO_TESTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_pipeline


@dataclass(frozen=True)
class Viewer:
    account_id: str
    email: str
    adult: str
    kids: str


@dataclass(frozen=True)
class WebStack:
    app_url: str
    edge_url: str
    edge_home: Path
    config: WebConfig
    topic: str


@pytest.fixture(scope="session")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> ObjectStoreResource:
    return ObjectStoreResource(root=str(tmp_path_factory.mktemp("web-objects")))


@pytest.fixture(scope="session")
def published_title(
    web_store: ObjectStoreResource,
    postgres_resource: PostgresResource,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """A 12 s title published by the video pipeline, rated TV-MA (for the maturity test)."""
    run_pipeline = video_pipeline_runner()
    clip = make_clip(tmp_path_factory.mktemp("web-media") / "watch.mp4", Shape(640, 360, 30, 12.0))
    title_id, result, _ = run_pipeline(
        clip, web_store, postgres_resource, f"web-{uuid.uuid4().hex[:8]}"
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    with postgres_resource.connect() as conn:
        conn.execute(
            "UPDATE catalog.titles SET maturity_rating = 'TV-MA' WHERE title_id = %s", (title_id,)
        )
    return title_id


def make_viewer(postgres: PostgresResource, plan: str = "basic") -> Viewer:
    account_id = f"web-{uuid.uuid4().hex[:10]}"
    email = f"{account_id}@example.com"
    now = datetime.now(UTC)
    with postgres.connect() as conn:
        accounts.create_account(conn, account_id, email, "US", "USD", now)
        accounts.add_profile(conn, f"{account_id}-adult", account_id, "Alex", "adult")
        accounts.add_profile(conn, f"{account_id}-kids", account_id, "Kim", "kids")
        accounts.subscribe(conn, account_id, plan, now)
        viewers.set_password(conn, account_id, PASSWORD)
    return Viewer(account_id, email, f"{account_id}-adult", f"{account_id}-kids")


@pytest.fixture
def viewer(postgres_resource: PostgresResource) -> Viewer:
    """A fresh account on the Basic plan (one stream at a time) with an adult and a kids
    profile, so no test sees another's streams."""
    return make_viewer(postgres_resource)


@pytest.fixture(scope="session")
def web(
    web_store: ObjectStoreResource,
    kafka_resource: KafkaResource,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WebStack]:
    topic = f"test-web-events-{uuid.uuid4().hex[:8]}"
    kafka_resource.ensure_topics([topic], partitions=2)
    app_port, edge_port = free_port(), free_port()
    key = os.urandom(32)
    config = WebConfig(
        signing_key=key,
        postgres_dsn=settings.postgres_dsn(),
        object_store_root=web_store.root,
        edge_url=f"http://127.0.0.1:{edge_port}",
        recs_url=None,
    )
    sink = EventSink(kafka_resource.producer(**{"linger.ms": 5}), topic)
    with serving(create_app(config, sink), app_port) as app_url:
        # nginx's workers run as nobody under root: their folder must be reachable (pytest's
        # tmp folders are private).
        edge_home = Path(tempfile.mkdtemp(prefix="web-test-edge-"))
        edge_home.chmod(0o755)
        edge = EdgeService(home=edge_home, port=edge_port, app_port=app_port, signing_key=key)
        edge.up()
        try:
            yield WebStack(app_url, edge.endpoint, edge_home, config, topic)
        finally:
            edge.down()
            shutil.rmtree(edge_home, ignore_errors=True)


@contextmanager
def serving(app: FastAPI, port: int) -> Iterator[str]:
    """The app under uvicorn in a thread on this loopback port while the block runs; its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"web-app-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the web app did not start within 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
