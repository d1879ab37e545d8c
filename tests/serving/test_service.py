"""The recommendation service over real Redis: auth, bad input, cold start, never a watched
title, metrics, and a model swap under load with no failed request."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

from netflix_assets.recs import ranker
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.two_stage import TitleTable
from netflix_assets.serving import bundle, prepared
from netflix_assets.serving.app import create_app
from netflix_assets.serving.auth import AuthConfig
from netflix_assets.serving.store import ModelStore

pytestmark = pytest.mark.stack

KEY = "test-key-123"
SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"
N_USERS, N_TITLES, DIM = 50, 120, 8


def token(sub: str, lifetime: timedelta = timedelta(minutes=5), secret: str = SECRET, **claims):
    """A token as the identity provider issues it: this service's audience and issuer."""
    now = datetime.now(UTC)
    payload = {"sub": sub, "iat": now, "exp": now + lifetime, "aud": "netflix-assets-recs"}
    payload["iss"] = "netflix-assets"
    return jwt.encode({**payload, **claims}, secret, "HS256")


def _booster(seed: int, rounds: int = 5) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    rows = rng.random((400, len(ranker.FEATURES)))
    frame = pd.DataFrame(rows, columns=list(ranker.FEATURES))
    frame["label"] = (frame["als_score"] > 0.7).astype(int)
    frame["group"] = np.repeat(np.arange(40), 10)
    return ranker.train(frame, rounds=rounds, seed=seed)


def write_release(
    store, path, version: str, prefix: str, seed: int, broken: bool = False, rounds: int = 5
):
    """A release with planted tastes: user u likes titles t where t % 4 == u % 4."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, DIM)).astype(np.float32)
    users = centers[np.arange(N_USERS) % 4] + 0.05 * rng.normal(size=(N_USERS, DIM))
    titles = centers[np.arange(N_TITLES) % 4] + 0.05 * rng.normal(size=(N_TITLES, DIM))
    model = AlsModel(
        np.array([f"u{i}" for i in range(N_USERS)]),
        np.array([f"t{i}" for i in range(N_TITLES)]),
        users.astype(np.float32),
        titles.astype(np.float32),
    )
    feats = pd.DataFrame({"title_id": model.titles, "t_interactions_28d": np.arange(N_TITLES)})
    for column in ranker.TITLE_FEATURES[1:]:
        feats[column] = 0.0
    base = f"models/{version}"
    store.put_bytes(model.to_bytes(), f"{base}/als.npz")
    store.put_bytes(_booster(seed, rounds).model_to_string().encode(), f"{base}/ranker.txt")
    store.put_bytes(TitleTable.build(model.titles, feats).to_bytes(), f"{base}/titles.npz")
    manifest = {
        "version": version,
        "as_of": "2026-11-10",
        "als_key": f"{base}/als.npz",
        "ranker_key": f"{base}/missing.txt" if broken else f"{base}/ranker.txt",
        "titles_key": f"{base}/titles.npz",
        "online_prefix": prefix,
    }
    path.write_text(json.dumps(manifest))


@pytest.fixture
def service(tmp_path, object_store, redis_resource):
    prefix = f"test:{uuid.uuid4().hex[:8]}"
    manifest = tmp_path / "release.json"
    client = redis_resource.client()
    # u1 watched t1, t5, t9 (its own taste) and an unknown title.
    client.sadd(f"{prefix}:seen:u1", "t1", "t5", "t9", "t-gone")
    client.hset(f"{prefix}:user:u1", mapping={"u_interactions_28d": "3.0"})
    client.sadd(f"{prefix}:seen:newbie", "t119")
    store = ModelStore(
        bundle.manifest_file_source(manifest), object_store, tmp_path / "releases", poll_seconds=0.1
    )
    app = create_app(store, redis_resource.async_client, AuthConfig(api_key=KEY, jwt_secret=SECRET))
    yield store, app, manifest, prefix
    store.stop()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_no_release_answers_503_then_serves(service, object_store) -> None:
    store, app, manifest, prefix = service
    http = TestClient(app)
    assert http.get("/healthz").status_code == 503
    response = http.get("/v1/recommendations/u1", headers={"X-API-Key": KEY})
    assert response.status_code == 503 and "netflix-assets train" in response.json()["detail"]
    write_release(object_store, manifest, "v1", prefix, seed=1)
    assert store.refresh()
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["model_version"] == "v1"
    assert health["ranker_engine"] == "lleaves"


def test_auth_and_bad_input(service, object_store) -> None:
    store, app, manifest, prefix = service
    write_release(object_store, manifest, "v1", prefix, seed=1)
    store.refresh()
    http = TestClient(app)
    missing = http.get("/v1/recommendations/u1")
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    assert http.get("/v1/recommendations/u1", headers={"X-API-Key": "nope"}).status_code == 401
    own = http.get("/v1/recommendations/u1", headers={"Authorization": f"Bearer {token('u1')}"})
    assert own.status_code == 200
    other = http.get("/v1/recommendations/u2", headers={"Authorization": f"Bearer {token('u1')}"})
    assert other.status_code == 403 and "own subject" in other.json()["detail"]
    backend = token("recs-gateway", role="service")
    served = http.get("/v1/recommendations/u2", headers={"Authorization": f"Bearer {backend}"})
    assert served.status_code == 200
    expired = token("u1", lifetime=timedelta(minutes=-5))
    late = http.get("/v1/recommendations/u1", headers={"Authorization": f"Bearer {expired}"})
    assert late.status_code == 401 and "expired" in late.json()["detail"]
    forged = token("u1", secret="other" * 8)
    assert (
        http.get("/v1/recommendations/u1", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401
    key = {"X-API-Key": KEY}
    assert http.get("/v1/recommendations/u1?k=0", headers=key).status_code == 422
    assert http.get("/v1/recommendations/u1?k=101", headers=key).status_code == 422
    assert http.get("/v1/recommendations/u1?k=ten", headers=key).status_code == 422
    bad = http.get("/v1/recommendations/bad%20user%3B", headers=key)
    assert bad.status_code == 422 and "user_id" in bad.json()["detail"]


def test_recommendations_follow_taste_and_skip_watched(service, object_store) -> None:
    store, app, manifest, prefix = service
    write_release(object_store, manifest, "v1", prefix, seed=1)
    store.refresh()
    http = TestClient(app)
    body = http.get("/v1/recommendations/u1?k=10", headers={"X-API-Key": KEY}).json()
    titles = [i["title_id"] for i in body["items"]]
    assert len(titles) == 10 and len(set(titles)) == 10
    assert not {"t1", "t5", "t9"} & set(titles)
    assert body["cold_start"] is False and body["model_version"] == "v1"
    # The planted taste: most picks share u1's cluster (t % 4 == 1); MMR may mix in a few.
    assert sum(int(t[1:]) % 4 == 1 for t in titles) >= 7
    reasons = [i["reason"] for i in body["items"]]
    assert any(r == {"kind": "because_you_watched", "title_id": r.get("title_id")} for r in reasons)
    assert all(r.get("title_id") in (None, "t1", "t5", "t9") for r in reasons)

    cold = http.get("/v1/recommendations/newbie?k=5", headers={"X-API-Key": KEY}).json()
    assert cold["cold_start"] is True
    # Most popular first (t_interactions_28d = index), without the one newbie watched.
    assert [i["title_id"] for i in cold["items"]] == ["t118", "t117", "t116", "t115", "t114"]
    assert all(i["reason"] == {"kind": "popular"} for i in cold["items"])
    metrics = http.get("/metrics").text
    assert 'recs_requests_total{outcome="ok"} 1.0' in metrics
    assert 'recs_requests_total{outcome="cold_start"} 1.0' in metrics
    assert "recs_request_seconds_bucket" in metrics


def test_broken_release_keeps_the_old_model(service, object_store) -> None:
    store, app, manifest, prefix = service
    write_release(object_store, manifest, "v1", prefix, seed=1)
    store.refresh()
    write_release(object_store, manifest, "v2", prefix, seed=2, broken=True)
    assert not store.refresh()
    assert store.current.version == "v1" and store.load_errors == 1
    assert "missing.txt" in store.last_error
    health = TestClient(app).get("/healthz").json()
    assert health["model_version"] == "v1" and "release v2 failed" in health["last_load_error"]
    assert "missing.txt" not in health["last_load_error"]  # object-store paths stay in the log


def _named(manifest_path) -> tuple[str, dict]:
    manifest = json.loads(manifest_path.read_text())
    return manifest["version"], manifest


def test_prepared_release_is_reused_and_a_foreign_ranker_refused(tmp_path, object_store) -> None:
    manifest, root = tmp_path / "release.json", tmp_path / "releases"
    write_release(object_store, manifest, "v1", "p", seed=1)
    v1 = prepared.prepare(*_named(manifest), object_store, root)
    stamp = (v1 / "ranker.o").stat().st_mtime_ns
    assert prepared.prepare(*_named(manifest), object_store, root) == v1  # a restart reuses it
    assert (v1 / "ranker.o").stat().st_mtime_ns == stamp
    opened = prepared.open_bundle(v1)
    assert isinstance(opened.user_factors, np.memmap) and opened.scorer.engine == "lleaves"
    als = AlsModel.from_bytes(object_store.get_bytes("models/v1/als.npz"))
    assert list(opened.user_ids) == sorted(als.users)  # sorted for binary search, rows follow
    assert np.array_equal(opened.user_factors[opened.user("u17")], als.user_factors[17])
    assert np.array_equal(
        opened.title_factors[opened.title_positions(["t42"])[0]], als.title_factors[42]
    )

    # Another release's machine code in v1's directory is caught by v1's probe scores.
    write_release(object_store, manifest, "v2", "p", seed=2)
    v2 = prepared.prepare(*_named(manifest), object_store, root)
    (v1 / "ranker.o").write_bytes((v2 / "ranker.o").read_bytes())
    with pytest.raises(ValueError, match="compiled ranker differs from LightGBM"):
        prepared.open_bundle(v1)


def test_preparation_killed_half_way_publishes_nothing(tmp_path, object_store) -> None:
    manifest, root = tmp_path / "release.json", tmp_path / "releases"
    write_release(object_store, manifest, "v1", "p", seed=1, rounds=400)
    version, named = _named(manifest)
    final = root / prepared.key(version, named, object_store)
    preparer = prepared.Preparer()
    preparer.start()
    killed = None
    try:
        for _ in range(5):  # the child may finish before the kill lands; try again then
            shutil.rmtree(root, ignore_errors=True)
            outcome: list[object] = []

            def run(outcome: list[object] = outcome) -> None:
                try:
                    outcome.append(preparer(version, named, object_store, root))
                except RuntimeError as exc:
                    outcome.append(exc)

            worker = threading.Thread(target=run)
            pid = preparer.pid()
            worker.start()
            deadline = time.time() + 60
            while not list(root.glob(".*")) and not outcome and time.time() < deadline:
                time.sleep(0.001)
            os.kill(pid, signal.SIGKILL)
            worker.join(timeout=60)
            if isinstance(outcome[0], RuntimeError):
                killed = outcome[0]
                break
            preparer.start()  # it finished first; a new child for the next try
        assert killed is not None, "every preparation finished before it could be killed"
        assert "the preparing process died" in str(killed)
        assert not final.exists() and list(root.glob(".*"))  # only scratch is left

        # The same preparer starts a new child, and the store prunes the scratch.
        store = ModelStore(
            bundle.manifest_file_source(manifest), object_store, root, prepare=preparer
        )
        assert store.refresh() and store.current.version == "v1"
        assert [p.name for p in root.iterdir()] == [final.name]
    finally:
        preparer.close()


def test_unopenable_release_is_prepared_afresh_on_retry(tmp_path, object_store) -> None:
    manifest, root = tmp_path / "release.json", tmp_path / "releases"
    write_release(object_store, manifest, "v2", "p", seed=2)
    foreign = prepared.prepare(*_named(manifest), object_store, tmp_path / "other")
    write_release(object_store, manifest, "v1", "p", seed=1)
    v1 = prepared.prepare(*_named(manifest), object_store, root)
    (v1 / "ranker.o").write_bytes((foreign / "ranker.o").read_bytes())
    store = ModelStore(
        bundle.manifest_file_source(manifest), object_store, root, retry_seconds=3600
    )
    assert not store.refresh() and "differs from LightGBM" in store.last_error
    assert not v1.exists()  # removed, so a retry does not reopen the same bad directory
    assert not store.refresh() and store.load_errors == 1  # not retried before retry_seconds
    store._retry_seconds = 0.0
    assert store.refresh() and store.current.version == "v1"


def test_swap_under_load_fails_no_request(service, object_store, free_tcp_port) -> None:
    import httpx

    store, app, manifest, prefix = service
    write_release(object_store, manifest, "v1", prefix, seed=1)
    store.refresh()
    store.start()
    port = free_tcp_port
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    statuses: list[int] = []
    versions: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}) as c:
            while not stop.is_set():
                r = c.get(f"/v1/recommendations/u{np.random.randint(N_USERS)}?k=10")
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.append(r.json()["model_version"])

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        write_release(object_store, manifest, "v2", prefix, seed=2)
        deadline = time.time() + 10
        while (store.current.version != "v2") and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
    finally:
        stop.set()
        for w in workers:
            w.join()
        server.should_exit = True
        thread.join(timeout=10)
    assert len(statuses) > 50
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert versions[0] == "v1" and versions[-1] == "v2" and store.swaps == 1


def test_serve_command_follows_a_manifest(
    tmp_path, object_store, redis_resource, free_tcp_port
) -> None:
    """`netflix-assets serve` as users start it: the preparer child runs from the console
    script, the first release serves, a newer one is swapped in, and SIGTERM stops it."""
    import httpx

    manifest, releases = tmp_path / "release.json", tmp_path / "releases"
    write_release(object_store, manifest, "v1", f"test:{uuid.uuid4().hex[:8]}", seed=1)
    env = {
        **os.environ,
        "NETFLIX_ASSETS_API_KEY": KEY,
        "NETFLIX_ASSETS_OBJECT_STORE": object_store.root,
    }
    command = [
        str(Path(sys.executable).with_name("netflix-assets")),
        "serve",
        "--manifest",
        str(manifest),
        "--port",
        str(free_tcp_port),
        "--poll-seconds",
        "0.2",
        "--release-dir",
        str(releases),
    ]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{free_tcp_port}/healthz"

    def version_within(wanted: str, seconds: float) -> str | None:
        deadline = time.time() + seconds
        while time.time() < deadline and server.poll() is None:
            try:
                health = httpx.get(url).json()
                if health["model_version"] == wanted:
                    return health["model_version"]
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return None

    try:
        assert version_within("v1", 90) == "v1", (
            server.stderr.read() if server.poll() else "timeout"
        )
        r = httpx.get(
            f"http://127.0.0.1:{free_tcp_port}/v1/recommendations/u1?k=3",
            headers={"X-API-Key": KEY},
        )
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        write_release(object_store, manifest, "v2", "p", seed=2)
        assert version_within("v2", 60) == "v2"
        assert len(list(releases.iterdir())) == 1  # v1's directory was pruned
        children = _children(server.pid)
        assert children, "the preparer child is not running"
    finally:
        server.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    stderr = server.stderr.read()
    assert "Traceback" not in stderr and "leaked" not in stderr, stderr  # a clean shutdown
    deadline = time.time() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "orphaned child"


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc: the suite runs on Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_online_features_replace_a_watched_set_in_one_transaction(
    spark_resource, redis_resource, object_store
) -> None:
    """The service reads feat:v1:seen:<user> while online_features rewrites it; a DEL and SADD
    sent as separate commands let a request in between see an empty set and recommend titles
    the viewer has watched. Redis's MONITOR shows whether the writer wraps them in MULTI/EXEC."""
    import pyarrow as pa
    from dagster import DagsterInstance, materialize
    from deltalake import write_deltalake

    from assets import recs
    from schema import tables

    as_of = datetime(2026, 11, 10).date()
    user = f"atomic-{uuid.uuid4().hex[:8]}"
    write_deltalake(
        object_store.table_uri(tables.FEATURES_USER),
        pa.table({"user_id": [user], "u_interactions_all": [2.0], "as_of": [as_of]}),
    )
    write_deltalake(
        object_store.table_uri(tables.FEATURES_USER_TITLE),
        pa.table({"user_id": [user, user], "title_id": ["a", "b"], "as_of": [as_of, as_of]}),
    )
    seen_key = f"{recs.ONLINE_PREFIX}:seen:{user}"
    client = redis_resource.client()
    client.sadd(seen_key, "stale")
    commands: list[tuple[str, list[str]]] = []
    stop = threading.Event()

    def watch() -> None:
        # No socket timeout: the Spark steps leave Redis quiet for longer than the resource's.
        with redis.Redis.from_url(redis_resource.resolved_url()).monitor() as monitor:
            for entry in monitor.listen():
                peer = f"{entry.get('client_address')}:{entry.get('client_port')}"
                commands.append((peer, entry["command"].split()))
                if stop.is_set():
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.3)
    try:
        result = materialize(
            [recs.online_features],
            partition_key=as_of.isoformat(),
            instance=DagsterInstance.ephemeral(),
            resources={
                "spark": spark_resource,
                "object_store": object_store,
                "redis": redis_resource,
            },
        )
        assert result.success
        assert client.smembers(seen_key) == {b"a", b"b"}
    finally:
        stop.set()
        client.ping()  # wakes the monitor so it sees stop
        watcher.join(timeout=10)
        client.delete(seen_key, f"{recs.ONLINE_PREFIX}:user:{user}")
    writer = next(peer for peer, words in commands if words[:2] == ["DEL", seen_key])
    sequence = [words[0].upper() for peer, words in commands if peer == writer]
    keys = [words[1] if len(words) > 1 else "" for peer, words in commands if peer == writer]
    delete = next(
        i
        for i, (cmd, key) in enumerate(zip(sequence, keys, strict=True))
        if cmd == "DEL" and key == seen_key
    )
    opened = max((i for i in range(delete) if sequence[i] == "MULTI"), default=-1)
    closed = max((i for i in range(delete) if sequence[i] == "EXEC"), default=-1)
    assert opened > closed, f"DEL {seen_key} ran outside a transaction: {sequence[: delete + 3]}"
    after = sequence[delete:]
    assert after.index("SADD") < after.index("EXEC")


def test_a_replaced_bundle_is_released_by_the_poller_after_a_grace(tmp_path, object_store) -> None:
    """The swap keeps the old bundle for retire_seconds, then the poller's own call drops the
    last reference: freeing it unmaps the pruned release's files, which must not fall on the
    request that happens to finish last on it (the event loop)."""
    import weakref

    manifest, root = tmp_path / "release.json", tmp_path / "releases"
    source = bundle.manifest_file_source(manifest)
    store = ModelStore(source, object_store, root, prepare=prepared.prepare, retire_seconds=3600)
    write_release(object_store, manifest, "v1", "p", seed=1)
    assert store.refresh()
    old = weakref.ref(store.current)
    write_release(object_store, manifest, "v2", "p", seed=2)
    assert store.refresh() and store.current.version == "v2"
    assert len(list(root.iterdir())) == 1  # v1's files pruned, still mapped
    assert store.release_retired() == 0 and old() is not None  # within the grace
    assert store.release_retired(now=time.monotonic() + 3600) == 1
    assert old() is None  # freed by that call, in the caller's thread
    assert store.release_retired(now=time.monotonic() + 7200) == 0
