"""Files the stack generates once (its secrets, the Kafka cluster's id): one value per file, even
when threads ask at once, and never read half-written."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netflix_assets.stack import kafka_cluster, process, secrets


def test_threads_asking_at_once_get_one_value_and_leave_no_drafts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three threads of one process (a three-node cluster starting) used one draft file name,
    so one thread's unlink removed another's draft before it was linked into place."""
    monkeypatch.setenv("NETFLIX_ASSETS_STATE", str(tmp_path))
    link = os.link

    def slow_link(source, target) -> None:  # widens the window between write and link
        time.sleep(0.01)
        link(source, target)

    monkeypatch.setattr(process.os, "link", slow_link)
    for round_ in range(5):
        name = f"kafka-password-{round_}"
        with ThreadPoolExecutor(8) as pool:
            values = set(pool.map(secrets.ensure, [name] * 8))
        assert len(values) == 1
        assert (tmp_path / "secrets" / name).read_text().strip() == values.pop()
    assert not [p for p in (tmp_path / "secrets").iterdir() if p.name.startswith(".")]


def test_cluster_nodes_formatting_at_once_read_one_whole_cluster_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id was created empty and then written, so a node reading it in between found an
    empty file and the cluster did not start (seen in CI)."""
    fdopen = os.fdopen

    def slow_fdopen(*args, **kwargs):  # widens the window between create and write
        time.sleep(0.01)
        return fdopen(*args, **kwargs)

    monkeypatch.setattr(process.os, "fdopen", slow_fdopen)
    for round_ in range(5):
        state = tmp_path / f"cluster-{round_}"
        with ThreadPoolExecutor(8) as pool:
            values = set(pool.map(kafka_cluster.cluster_id, [state] * 8))
        assert len(values) == 1
        assert values.pop()
        assert not [p for p in state.iterdir() if p.name.startswith(".")]
