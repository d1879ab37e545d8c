"""Pure cores of the web app: playback tokens and event batches (no services)."""

from __future__ import annotations

import time

import pytest
from conftest import viewing_event

from netflix_assets.web import tokens
from netflix_assets.web.events import BatchRefused, check_events, parse_batch
from netflix_assets.web.viewers import Profile

KEY = b"k" * 32
PREFIX = "delivery/t1/abc123/"
VIEWER = Profile("p1", "a1", "Alex", "adult", "US")


def grant(expires_in: float = 60) -> tokens.PlaybackGrant:
    return tokens.PlaybackGrant(PREFIX, "p1", "s1", int(time.time() + expires_in))


def event(**changes) -> dict:
    return viewing_event("a1", "p1", **changes)


def test_a_token_opens_its_prefix_only():
    token = tokens.sign(KEY, grant())
    assert tokens.verify(KEY, token, PREFIX + "360p/seg_00001.m4s").stream_id == "s1"
    with pytest.raises(tokens.PlaybackDenied, match="does not open"):
        tokens.verify(KEY, token, "delivery/t2/abc123/master.m3u8")
    with pytest.raises(tokens.PlaybackDenied, match="does not open"):
        tokens.verify(KEY, token, PREFIX + "../../t2/abc123/master.m3u8")


def test_tampered_forged_and_expired_tokens_are_denied():
    token = tokens.sign(KEY, grant())
    payload, mac = token.split(".")
    other = tokens.sign(KEY, tokens.PlaybackGrant("delivery/t2/abc123/", "p1", "s1", 2**40))
    with pytest.raises(tokens.PlaybackDenied, match="signature"):
        tokens.verify(KEY, f"{other.split('.')[0]}.{mac}", "delivery/t2/abc123/master.m3u8")
    with pytest.raises(tokens.PlaybackDenied, match="signature"):
        tokens.verify(b"x" * 32, token, PREFIX + "master.m3u8")
    with pytest.raises(tokens.PlaybackDenied, match="malformed"):
        tokens.verify(KEY, payload, PREFIX + "master.m3u8")
    with pytest.raises(tokens.PlaybackDenied, match="expired"):
        tokens.verify(KEY, tokens.sign(KEY, grant(-1)), PREFIX + "master.m3u8")


def test_a_prefix_outside_the_delivery_area_cannot_be_signed():
    with pytest.raises(ValueError, match="delivery folder"):
        tokens.sign(KEY, tokens.PlaybackGrant("raw/t1/", "p1", "s1", 2**40))


def test_batches_that_are_not_batches_are_refused_whole():
    for body, status in [
        (b"{not json", 400),
        (b'{"events": {}}', 400),
        (b"[]", 400),
        (b"[" + b",".join([b"{}"] * 11) + b"]", 413),
    ]:
        with pytest.raises(BatchRefused) as refused:
            parse_batch(body, max_events=10)
        assert refused.value.status == status


def test_each_bad_event_gets_its_reason_and_the_good_ones_stay():
    events = [
        event(),
        event(event_id="e2", country="usa"),
        event(event_id="e3", event_ts="yesterday"),
        event(event_id="e4", profile_id="someone-else"),
        event(event_id="e5", user_id="other-account"),
        event(event_id="e6", extra=1),
        "not an object",
        event(event_id="e8", event_type="start", startup_ms=850),
    ]
    valid, rejected = check_events(events, VIEWER)
    assert [e["event_id"] for e in valid] == ["e1", "e8"]
    reasons = {r.index: r.reason for r in rejected}
    assert "country" in reasons[1] and "pattern" in reasons[1]
    assert "event_ts" in reasons[2] and "date-time" in reasons[2]
    assert "signed-in profile" in reasons[3]
    assert "signed-in account" in reasons[4]
    assert "extra" in reasons[5]
    assert "object" in reasons[6]
    assert [r.event_id for r in rejected] == ["e2", "e3", "e4", "e5", "e6", None]
