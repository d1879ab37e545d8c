"""The web app's Prometheus metrics, scraped from the real app after real requests."""

from __future__ import annotations

import uuid

import httpx
import pytest
from conftest import PASSWORD, free_port, make_viewer, serving, viewing_event
from prometheus_client.parser import text_string_to_metric_families

from netflix_assets.web.app import create_app
from netflix_assets.web.events import EventSink

pytestmark = pytest.mark.stack
H264 = "avc1.64001e,mp4a.40.2"


def scrape(app_url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    answer = httpx.get(f"{app_url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def signed_in(app_url: str, email: str, profile: str) -> httpx.Client:
    client = httpx.Client(base_url=app_url, timeout=30)
    assert client.post("/signin", data={"email": email, "password": PASSWORD}).status_code == 303
    assert client.post(f"/profiles/{profile}").status_code == 303
    return client


def test_events_and_requests_are_counted_by_reason_and_route(web, postgres_resource):
    viewer = make_viewer(postgres_resource)
    client = signed_in(web.app_url, viewer.email, viewer.adult)
    session = f"m-{uuid.uuid4().hex[:8]}"

    def event(i: int, **changes):
        ids = {"event_id": f"{session}-{i}", "session_id": session}
        return viewing_event(viewer.account_id, viewer.adult, **{**ids, **changes})

    before = scrape(web.app_url)
    assert client.post("/v1/events", json=[event(i) for i in range(50)]).status_code == 200
    mixed = [event(50), event(51, profile_id=viewer.kids), event(52, country="usa"), 7]
    assert client.post("/v1/events", json=mixed).status_code == 400
    assert client.post("/v1/events", content=b"{oops").status_code == 400
    assert (
        client.post("/v1/events", json=[event(i, os="x" * 1000) for i in range(400)]).status_code
        == 413
    )
    assert client.get(f"/title/no-such-title-{session}").status_code == 404
    assert client.get(f"/no/such/path/{session}").status_code == 404
    assert client.get("/static/player.js").status_code == 200
    after = scrape(web.app_url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("web_events_accepted_total") == 51
    assert grew("web_events_rejected_total", reason="other_profile") == 1
    assert grew("web_events_rejected_total", reason="pattern") == 1
    assert grew("web_events_rejected_total", reason="type") == 1
    assert grew("web_event_batches_refused_total", reason="not_json") == 1
    assert grew("web_event_batches_refused_total", reason="too_large") == 1
    events = {"method": "POST", "route": "/v1/events"}
    assert grew("web_http_request_duration_seconds_count", **events, status="200") == 1
    assert grew("web_http_request_duration_seconds_count", **events, status="400") == 2
    assert grew("web_http_request_duration_seconds_count", **events, status="413") == 1
    title = {"method": "GET", "route": "/title/{title_id}", "status": "404"}
    assert grew("web_http_request_duration_seconds_count", **title) == 1
    static = {"method": "GET", "route": "/static", "status": "200"}
    assert grew("web_http_request_duration_seconds_count", **static) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert grew("web_http_request_duration_seconds_count", **unmatched) == 1
    # Route templates only: no raw path (and so no id) ever becomes a label value.
    assert not any(session in str(labels) for _, labels in after)
    assert value(after, "web_playback_streams_active") >= 0


def test_playback_authorizations_and_live_streams(web, postgres_resource, published_title):
    viewer = make_viewer(postgres_resource)  # Basic: one screen
    first = signed_in(web.app_url, viewer.email, viewer.adult)
    second = signed_in(web.app_url, viewer.email, viewer.adult)
    kids = signed_in(web.app_url, viewer.email, viewer.kids)
    before = scrape(web.app_url)
    granted = first.post("/v1/playback", json={"title_id": published_title, "codecs": [H264]})
    assert granted.status_code == 200, granted.text
    over = second.post("/v1/playback", json={"title_id": published_title, "codecs": [H264]})
    assert over.status_code == 409
    rated = kids.post("/v1/playback", json={"title_id": published_title, "codecs": [H264]})
    assert rated.status_code == 403
    missing = first.post("/v1/playback", json={"title_id": "no-such-title", "codecs": [H264]})
    assert missing.status_code == 404
    during = scrape(web.app_url)
    first.post(f"/v1/playback/{granted.json()['stream_id']}/stop")
    after = scrape(web.app_url)

    def grew(reason: str, result: str = "refused") -> float:
        name = "web_playback_authorizations_total"
        return value(during, name, result=result, reason=reason) - value(
            before, name, result=result, reason=reason
        )

    assert grew("", result="granted") == 1
    assert grew("stream_limit") == 1
    assert grew("maturity") == 1
    assert grew("not_found") == 1
    # Leases of other tests may run out meanwhile, so "at most", not "exactly", one fewer.
    assert value(during, "web_playback_streams_active") >= 1
    assert (
        value(after, "web_playback_streams_active")
        <= value(during, "web_playback_streams_active") - 1
    )


def test_events_kafka_did_not_acknowledge_are_counted(web, postgres_resource, kafka_resource):
    """A second app whose topic does not exist (the broker creates no topics): the batch is a
    503 and its events count as produce failures, not as accepted."""
    sink = EventSink(
        kafka_resource.producer(**{"linger.ms": 5, "message.timeout.ms": 3000}),
        f"test-web-missing-{uuid.uuid4().hex[:8]}",
    )
    with serving(create_app(web.config, sink), free_port()) as app_url:
        viewer = make_viewer(postgres_resource)
        client = signed_in(app_url, viewer.email, viewer.adult)
        batch = [
            viewing_event(viewer.account_id, viewer.adult, event_id=f"e{i}") for i in range(50)
        ]
        answer = client.post("/v1/events", json=batch)
        assert answer.status_code == 503 and "retry it" in answer.json()["detail"]
        samples = scrape(app_url)
        assert value(samples, "web_events_produce_failed_total") == 50
        assert value(samples, "web_events_accepted_total") == 0
