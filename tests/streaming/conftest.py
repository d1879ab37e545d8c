"""Fixtures of the QoE stream tests: one-partition topics (so event order, and with it the
watermark, is deterministic) and a skip when the PyFlink virtualenv is missing (a failure
under CI)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest
from qoe_testkit import FLINK_PYTHON

from netflix_assets import settings
from resources.kafka import KafkaResource


@pytest.fixture(scope="session")
def flink_python() -> str:
    """The PyFlink interpreter. Missing, the PyFlink tests skip on a developer's machine, saying
    why, but fail under CI (CI=true): a broken bootstrap must not pass as green."""
    if not FLINK_PYTHON.is_file():
        reason = f"{FLINK_PYTHON} is missing: run scripts/bootstrap_flink.sh to test PyFlink"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason} (CI is set: the PyFlink tests must run, not skip)")
        pytest.skip(reason)
    return str(FLINK_PYTHON)


@pytest.fixture(scope="session")
def make_qoe_topics(kafka_resource: KafkaResource) -> Callable[[], dict[str, str]]:
    """Fresh events/aggregates/alerts topics for one job run."""

    def make() -> dict[str, str]:
        suffix = uuid.uuid4().hex[:10]
        topics = {
            "events": f"test-qoe-events-{suffix}",
            "aggregates": f"test-qoe-aggregates-{suffix}",
            "alerts": f"test-qoe-alerts-{suffix}",
        }
        kafka_resource.ensure_topics(list(topics.values()), partitions=1)
        return topics

    return make


@pytest.fixture(scope="session")
def bootstrap(stack: dict[str, object]) -> str:
    return settings.kafka_bootstrap()
