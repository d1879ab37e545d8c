"""Hostile input at every entry point of the web app and its edge: each gets a clear 4xx and
nothing is produced, served or exposed."""

from __future__ import annotations

import httpx
import pytest
from conftest import PASSWORD, Viewer, WebStack

from netflix_assets.web import tokens

pytestmark = pytest.mark.stack


def signed_in(web: WebStack, viewer: Viewer) -> httpx.Client:
    client = httpx.Client(base_url=web.app_url, timeout=30)
    client.post("/signin", data={"email": viewer.email, "password": PASSWORD})
    client.post(f"/profiles/{viewer.adult}")
    return client


def test_every_api_refuses_a_missing_or_forged_session(web):
    with httpx.Client(base_url=web.app_url, timeout=30) as client:
        for cookie in (None, "x", "eyJhIjoxfQ.AAAA.BBBB"):
            if cookie:
                client.cookies.set("na_session", cookie)
            assert client.post("/v1/events", json=[{}]).status_code == 401
            playback = client.post("/v1/playback", json={"title_id": "t", "codecs": []})
            assert playback.status_code == 401
            assert client.post("/v1/playback/s/keepalive").status_code == 401
            assert client.post("/v1/playback/s/stop").status_code == 401
            assert client.get("/watch/t").status_code == 303
            assert client.post("/profiles/someone-else").status_code == 303


def test_a_session_cannot_pick_another_accounts_profile(web, viewer, postgres_resource):
    from conftest import make_viewer

    other = make_viewer(postgres_resource)
    client = httpx.Client(base_url=web.app_url, timeout=30)
    client.post("/signin", data={"email": viewer.email, "password": PASSWORD})
    answer = client.post(f"/profiles/{other.adult}")
    assert answer.status_code == 404 and "no such profile" in answer.text


def test_oversized_and_odd_sign_ins_are_refused_before_hashing(web, viewer):
    with httpx.Client(base_url=web.app_url, timeout=30) as client:
        huge = client.post("/signin", data={"email": viewer.email, "password": "x" * 100_000})
        assert huge.status_code == 401 and "at most 1024" in huge.text
        assert client.post("/signin", data={"email": viewer.email}).status_code == 422
        sql = client.post("/signin", data={"email": "' OR 1=1 --", "password": "x"})
        assert sql.status_code == 401


def test_odd_event_bodies_get_clear_4xx(web, viewer):
    client = signed_in(web, viewer)
    cases = [
        (b"\xff\xfe not utf-8", 400),
        (b'{"events": "nope"}', 400),
        (b"[" * 10_000 + b"]" * 10_000, 400),
        (b"[1, 2, 3]", 400),
        (b"x" * 300_000, 413),
    ]
    for body, status in cases:
        answer = client.post(
            "/v1/events", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == status, (body[:20], answer.status_code, answer.text[:200])
    rejected = client.post("/v1/events", content=b"[1, 2, 3]").json()
    assert rejected["accepted"] == 0 and len(rejected["rejected"]) == 3


def test_playback_requests_with_odd_values_are_refused(web, viewer):
    client = signed_in(web, viewer)
    for body, status in [
        ({"title_id": "../../etc/passwd", "codecs": ["avc1"]}, 404),
        ({"title_id": "x" * 500, "codecs": []}, 422),
        ({"title_id": "t", "codecs": ["a" * 500]}, 422),
        ({"title_id": "t", "codecs": ["c"] * 100}, 422),
        ({"title_id": 5}, 422),
    ]:
        assert client.post("/v1/playback", json=body).status_code == status, body


def test_the_edge_and_origin_refuse_what_is_not_a_signed_delivery_object(web):
    key = web.config.signing_key
    grant = tokens.PlaybackGrant("delivery/t/v/", "p", "s", 2**40)
    token = tokens.sign(key, grant)
    edge = httpx.Client(base_url=web.edge_url, timeout=30)
    for path in (
        f"/t/{token}/raw/t/v/source.mp4",
        f"/t/{token}/delivery/t/v/../../../secrets/web-signing-key",
        f"/t/{token}/delivery/t/v/%2e%2e/%2e%2e/x",
        "/origin/delivery/t/v/master.m3u8",
        "/t/not-a-token/delivery/t/v/master.m3u8",
    ):
        answer = edge.get(path)
        assert answer.status_code in (403, 404), (path, answer.status_code)
        assert "signing" not in answer.text
    assert edge.post(f"/t/{token}/delivery/t/v/master.m3u8").status_code in (403, 405)


def test_web_password_sets_a_password_and_names_bad_input(web, viewer):
    from click.testing import CliRunner

    from netflix_assets.cli import main

    runner = CliRunner()
    done = runner.invoke(main, ["web-password", viewer.email.upper(), "--password", "a new one!"])
    assert done.exit_code == 0 and viewer.account_id in done.output
    with httpx.Client(base_url=web.app_url, timeout=30) as client:
        signed = client.post("/signin", data={"email": viewer.email, "password": "a new one!"})
        assert signed.status_code == 303
    unknown = runner.invoke(main, ["web-password", "nobody@example.com", "--password", "x" * 9])
    assert unknown.exit_code == 1 and "no account with the e-mail" in unknown.output
    short = runner.invoke(main, ["web-password", viewer.email, "--password", "short"])
    assert short.exit_code == 1 and "8 to 1024 characters" in short.output
