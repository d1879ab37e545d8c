"""The web app and its edge over HTTP, on the real stack: sign-in, playback authorization,
signed delivery through nginx, the origin's headers, and /v1/events into Kafka."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from conftest import PASSWORD, Viewer, WebStack, free_port, viewing_event

from netflix_assets.stack.edge import EdgeService, stats
from netflix_assets.web import tokens
from resources.kafka import KafkaResource

pytestmark = pytest.mark.stack
H264 = "avc1.64001e,mp4a.40.2"


def signed_in(web: WebStack, viewer: Viewer, profile: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=web.app_url, timeout=30)
    answer = client.post("/signin", data={"email": viewer.email, "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/profiles"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.post(f"/profiles/{profile or viewer.adult}").status_code == 303
    return client


def all_codecs(web: WebStack, client: httpx.Client, title_id: str) -> list[str]:
    page = client.get(f"/watch/{title_id}").text
    return json.loads(page.split("data-codecs='")[1].split("'")[0])


def start(client: httpx.Client, title_id: str, codecs: list[str]) -> httpx.Response:
    return client.post("/v1/playback", json={"title_id": title_id, "codecs": codecs})


def test_wrong_password_and_forged_cookie_get_nothing(web, viewer):
    with httpx.Client(base_url=web.app_url) as client:
        wrong = client.post("/signin", data={"email": viewer.email, "password": "nope-nope"})
        assert wrong.status_code == 401 and "e-mail or password is wrong" in wrong.text
        unknown = client.post("/signin", data={"email": "nobody@example.com", "password": "x"})
        assert unknown.status_code == 401 and "e-mail or password is wrong" in unknown.text
        assert client.get("/").headers["location"] == "/signin"
        client.cookies.set("na_session", "eyJhY2NvdW50X2lkIjoiYSJ9.forged.sig")
        refused = client.post("/v1/events", json={"events": []})
        assert refused.status_code == 401 and "forged" in refused.json()["detail"]


def test_a_title_plays_through_the_edge_with_signed_urls(web, viewer, published_title):
    client = signed_in(web, viewer)
    codecs = all_codecs(web, client, published_title)
    answer = start(client, published_title, codecs)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    variants = [line for line in body["master"].splitlines() if line.endswith(".m3u8")]
    assert variants and all(v.startswith(body["media_base"]) for v in variants)
    media = httpx.Client(timeout=30)
    playlist = media.get(variants[0])
    assert playlist.status_code == 200, playlist.text
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert playlist.headers["cache-control"] == "public, max-age=300"
    folder = variants[0].rsplit("/", 1)[0]
    segment_names = [x for x in playlist.text.splitlines() if x.endswith(".m4s")]
    assert len(segment_names) >= 5  # 12 s in 2 s segments
    first = media.get(f"{folder}/{segment_names[0]}")
    assert first.status_code == 200 and first.headers["content-type"] == "video/iso.segment"
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = media.get(f"{folder}/{segment_names[0]}")
    assert again.headers["x-cache"] == "HIT" and again.content == first.content
    part = media.get(f"{folder}/{segment_names[0]}", headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.content == first.content[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(first.content)}"
    time.sleep(1.2)  # the access log is flushed every second
    assert stats(web.edge_home).hits >= 2


def test_expired_tampered_and_foreign_urls_are_refused_at_the_edge(web, viewer, published_title):
    client = signed_in(web, viewer)
    body = start(client, published_title, all_codecs(web, client, published_title)).json()
    prefix = body["media_base"].split("/t/")[1].split("/", 1)[1]
    key = web.config.signing_key
    path = next(x for x in body["master"].splitlines() if x.endswith(".m3u8"))
    obj = path.split("/t/")[1].split("/", 1)[1]
    grant = tokens.verify(key, body["media_base"].split("/t/")[1].split("/")[0], obj)
    expired = tokens.sign(key, tokens.PlaybackGrant(grant.prefix, grant.profile_id, "x", 1))
    media = httpx.Client(base_url=web.edge_url, timeout=30)
    refused = media.get(f"/t/{expired}/{obj}")
    assert refused.status_code == 403 and "expired" in refused.text
    token = body["media_base"].split("/t/")[1].rstrip("/")
    payload, mac = token.split(".")
    tampered = media.get(f"/t/{payload[:-2]}xx.{mac}/{obj}")
    assert tampered.status_code == 403 and "signature" in tampered.text
    other = obj.replace(prefix, "delivery/demo-title/d63b30d918fb/")
    assert media.get(f"/t/{token}/{other}").status_code == 403
    for traversal in (f"/t/{token}/{prefix}../../raw/x", f"/t/{token}/{prefix}%2e%2e/%2e%2e/x"):
        assert media.get(traversal).status_code in (400, 403, 404)
    # The origin answers the edge only, and never outside the delivery area.
    assert client.get(f"/origin/{obj}").status_code == 403
    edge_key = tokens.origin_key(key)
    assert client.get(f"/origin/{obj}", headers={"X-Edge-Key": edge_key}).status_code == 200
    for bad in ("delivery/../secrets/x", "raw/x/y.mp4", "delivery/%2e%2e/%2e%2e/etc/passwd"):
        answer = client.get(f"/origin/{bad}", headers={"X-Edge-Key": edge_key})
        assert answer.status_code in (400, 404), (bad, answer.status_code)


def test_stream_limit_and_maturity_are_enforced(web, viewer, published_title):
    client = signed_in(web, viewer)
    codecs = all_codecs(web, client, published_title)
    first = start(client, published_title, codecs)
    assert first.status_code == 200
    second = start(signed_in(web, viewer), published_title, codecs)
    assert second.status_code == 409
    assert "Basic plan plays on 1 screen at a time" in second.json()["detail"]
    stream = first.json()["stream_id"]
    assert client.post(f"/v1/playback/{stream}/stop").status_code == 204
    assert start(signed_in(web, viewer), published_title, codecs).status_code == 200
    kids = signed_in(web, viewer, viewer.kids)
    refused = start(kids, published_title, codecs)
    assert refused.status_code == 403 and "kids" in refused.json()["detail"]
    assert kids.get(f"/title/{published_title}").status_code == 404


def test_only_variants_the_browser_plays_are_offered(web, viewer, published_title):
    client = signed_in(web, viewer)
    codecs = all_codecs(web, client, published_title)
    refused = start(client, published_title, ["hvc1.1.6.L93.B0,mp4a.40.2"])
    assert refused.status_code == 409 and "none of the renditions" in refused.json()["detail"]
    kept = start(client, published_title, codecs[:1]).json()["master"]
    assert kept.count("#EXT-X-STREAM-INF") == sum(
        1 for line in kept.splitlines() if codecs[0] in line
    )


def test_events_are_validated_per_event_and_produced(web, viewer, kafka_resource: KafkaResource):
    client = signed_in(web, viewer)
    since = int(time.time() * 1000) - 1000
    session = f"s-{viewer.account_id}"

    def event(i: int, **changes):
        ids = {"event_id": f"{session}-{i}", "session_id": session, "position_ms": i * 1000}
        return viewing_event(viewer.account_id, viewer.adult, **{**ids, **changes})

    good = client.post("/v1/events", json={"events": [event(i) for i in range(50)]})
    assert good.status_code == 200 and good.json() == {"accepted": 50, "rejected": []}
    mixed = client.post(
        "/v1/events",
        json=[event(50), event(51, profile_id=viewer.kids), event(52, position_ms=-1)],
    )
    assert mixed.status_code == 400
    assert mixed.json()["accepted"] == 1
    assert [r["index"] for r in mixed.json()["rejected"]] == [1, 2]
    assert client.post("/v1/events", content=b"{oops").status_code == 400
    huge = [event(i, os="x" * 1000) for i in range(400)]
    assert client.post("/v1/events", json=huge).status_code == 413
    produced = [
        json.loads(v)
        for v in kafka_resource.read_since(web.topic, since, read_committed=False)
        if json.loads(v)["session_id"] == session
    ]
    assert sorted(e["event_id"] for e in produced) == sorted([f"{session}-{i}" for i in range(51)])


def test_an_edge_whose_app_is_down_says_so():
    """No app behind the edge: a 503 naming what does not answer, not nginx's bare 500."""
    home = Path(tempfile.mkdtemp(prefix="web-test-edge-down-"))
    home.chmod(0o755)
    edge = EdgeService(home=home, port=free_port(), app_port=free_port(), signing_key=b"k" * 32)
    edge.up()
    try:
        answer = httpx.get(f"{edge.endpoint}/t/abc.def/delivery/t/v/master.m3u8")
        assert answer.status_code == 503 and "does not answer" in answer.text
        assert httpx.get(f"{edge.endpoint}/raw/t/v/x.mp4").status_code == 404
    finally:
        edge.down()
        shutil.rmtree(home, ignore_errors=True)
