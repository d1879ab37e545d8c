"""The local stack's generated secrets: one value per name, even when threads ask at once."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netflix_assets.stack import secrets


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

    monkeypatch.setattr(secrets.os, "link", slow_link)
    for round_ in range(5):
        name = f"kafka-password-{round_}"
        with ThreadPoolExecutor(8) as pool:
            values = set(pool.map(secrets.ensure, [name] * 8))
        assert len(values) == 1
        assert (tmp_path / "secrets" / name).read_text().strip() == values.pop()
    assert not [p for p in (tmp_path / "secrets").iterdir() if p.name.startswith(".")]
