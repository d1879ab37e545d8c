"""The recommendation service's HTTP surface against what an outsider can learn or break: health
and error bodies that would map the deployment (paths, Redis address), a token reading another
viewer, and a hung Redis that must not freeze the event loop for every other request."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

from netflix_assets.serving.app import create_app
from netflix_assets.serving.auth import AuthConfig
from resources.redis import RedisResource

KEY = "hostile-http-key-0123456789"
SECRET = "hostile-http-secret-of-at-least-32-bytes"
AUTH = AuthConfig(api_key=KEY, jwt_secret=SECRET)
LEAKS = re.compile(r"/work|/tmp|/var|\.state|127\.0\.0\.1|localhost|:\d{4,5}\b")


@dataclass
class _Scorer:
    engine: str = "lleaves"


@dataclass
class _Bundle:
    version: str = "v1"
    online_prefix: str = "hostile"
    scorer: _Scorer = field(default_factory=_Scorer)


@dataclass
class _Releases:
    """What create_app reads of a ModelStore: a loaded release, and the last load error as the
    store records it (with the object-store path in it)."""

    current: _Bundle | None = field(default_factory=_Bundle)
    last_error: str | None = None
    swaps: int = 0
    load_errors: int = 0
    loaded_at: float | None = None

    def stop(self) -> None:
        """Nothing runs in the background here."""


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_health_and_errors_name_no_paths_or_addresses() -> None:
    port = _closed_port()
    releases = _Releases(
        last_error="release v2: [Errno 2] No such file or directory: "
        "'/work/main/.state/objects/models/v2/ranker.txt'"
    )
    unreachable = RedisResource(url=f"redis://:pw@127.0.0.1:{port}/0", socket_timeout_s=1.0)
    http = TestClient(create_app(releases, unreachable.async_client, AUTH))
    health = http.get("/healthz")
    assert health.status_code == 503 and health.json()["redis"] is False
    assert not LEAKS.search(health.text), health.text
    assert "release v2 failed" in health.json()["last_load_error"]
    down = http.get("/v1/recommendations/u1", headers={"X-API-Key": KEY})
    assert down.status_code == 503 and "feature store unavailable" in down.json()["detail"]
    assert not LEAKS.search(down.text), down.text
    assert str(port) not in down.text


def test_a_token_cannot_read_another_viewers_history(redis_resource) -> None:
    now = datetime.now(UTC)
    claims = {"iat": now, "exp": now + timedelta(minutes=5), "aud": "netflix-assets-recs"}
    token = jwt.encode({**claims, "sub": "u1", "iss": "netflix-assets"}, SECRET, "HS256")
    http = TestClient(create_app(_Releases(), redis_resource.async_client, AUTH))
    other = http.get("/v1/recommendations/u2", headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403


@pytest.fixture
def paused_redis(tmp_path: Path):
    """A private redis-server whose clients we can pause (CLIENT PAUSE ALL) without stalling the
    shared stack's Redis: a Redis that accepts a command and does not answer."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: run `make bootstrap`")
    port = _closed_port()
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    control = redis.Redis(port=port)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            control.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield port, control
    server.terminate()
    server.wait(timeout=10)


def test_a_hung_redis_does_not_freeze_other_requests(paused_redis, free_tcp_port) -> None:
    redis_port, control = paused_redis
    hung = RedisResource(url=f"redis://127.0.0.1:{redis_port}/0", socket_timeout_s=2.5)
    app = create_app(_Releases(), hung.async_client, AUTH)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_tcp_port, log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{free_tcp_port}"
    slow: list[httpx.Response] = []
    try:
        control.execute_command("CLIENT", "PAUSE", "6000", "ALL")
        waiter = threading.Thread(
            target=lambda: slow.append(
                httpx.get(f"{base}/v1/recommendations/u1", headers={"X-API-Key": KEY}, timeout=30)
            )
        )
        waiter.start()
        time.sleep(0.3)  # the request is now waiting on the paused Redis
        started = time.perf_counter()
        metrics = httpx.get(f"{base}/metrics", timeout=30)
        waited = time.perf_counter() - started
        waiter.join(timeout=30)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert metrics.status_code == 200
    assert waited < 1.0, f"/metrics waited {waited:.2f}s behind a request stuck on Redis"
    assert slow and slow[0].status_code == 503
