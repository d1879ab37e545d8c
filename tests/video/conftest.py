"""Test media for the video tests, made once per run with FFmpeg's lavfi sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from netflix_assets.video.testmedia import make_clip


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """clip("720p") -> path of that shape, generated on first use and reused afterwards."""
    folder = tmp_path_factory.mktemp("media")
    made: dict[str, Path] = {}

    def get(shape: str) -> Path:
        if shape not in made:
            made[shape] = make_clip(folder / f"{shape}.mp4", shape)
        return made[shape]

    return get
