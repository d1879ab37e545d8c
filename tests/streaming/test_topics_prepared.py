"""The CLI's streaming entry points on a broker that does not auto-create topics: simulate
creates its topic and checks every delivery; stream refuses a missing events topic and creates
its output topics (a Flink sink on a missing topic waits without saying why)."""

from __future__ import annotations

import uuid

import pytest

from netflix_assets import cli
from streaming.produce import produce_simulated
from streaming.simulator import SimConfig

pytestmark = pytest.mark.stack


def test_simulate_creates_its_topic_and_every_event_lands(kafka_resource) -> None:
    topic = f"test-fresh-events-{uuid.uuid4().hex[:8]}"
    report = produce_simulated(kafka_resource, SimConfig(users=5, titles=2, seed=3), topic=topic)
    assert report.produced > 0
    landed = sum(high - low for low, high in kafka_resource.watermarks(topic).values())
    assert landed == report.produced


def test_a_simulated_today_is_delivered_whole(kafka_resource) -> None:
    """Events later today than now: the broker rejects records stamped over an hour ahead, so
    before the timestamps were capped, a simulated "today" lost its future part."""
    from datetime import UTC, datetime

    topic = f"test-today-events-{uuid.uuid4().hex[:8]}"
    today = datetime.now(UTC).date()
    report = produce_simulated(
        kafka_resource, SimConfig(users=30, titles=3, seed=4, start=today), topic=topic
    )
    landed = sum(high - low for low, high in kafka_resource.watermarks(topic).values())
    assert landed == report.produced > 0


def test_stream_needs_its_events_topic_and_creates_its_outputs(kafka_resource, capsys) -> None:
    run = uuid.uuid4().hex[:8]
    events, aggregates, alerts = (f"test-{k}-{run}" for k in ("events", "aggs", "alerts"))
    args = (
        f"--bootstrap-servers={kafka_resource.bootstrap_servers}",
        f"--events-topic={events}",
        f"--aggregates-topic={aggregates}",
        f"--alerts-topic={alerts}",
    )
    with pytest.raises(SystemExit) as stopped:
        cli._prepare_stream_topics(args)
    assert stopped.value.code == 2
    assert f"the events topic {events!r} does not exist" in capsys.readouterr().err

    kafka_resource.ensure_topics([events])
    cli._prepare_stream_topics(args)
    existing = set(kafka_resource.admin().list_topics(timeout=10).topics)
    assert {aggregates, alerts} <= existing
