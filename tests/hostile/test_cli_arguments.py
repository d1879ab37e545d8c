"""Bad command-line arguments end with click's usage error naming the option, never a traceback,
and before anything is produced or written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from netflix_assets.cli import main

BAD = [
    (["simulate", "--start", "not-a-date"], "--start"),
    (["simulate", "--start", "2026-13-40"], "--start"),
    (["simulate", "--users", "-5"], "--users"),
    (["simulate", "--titles", "0"], "--titles"),
    (["simulate", "--days", "0"], "--days"),
    (["simulate", "--rate", "0"], "--rate"),
    (["simulate", "--malformed-share", "2"], "--malformed-share"),
    (["simulate", "--duplicate-share", "-0.1"], "--duplicate-share"),
    (["simulate", "--late-share", "nan-ish"], "--late-share"),
    (["simulate", "--span-minutes", "0"], "--span-minutes"),
    (["simulate", "--max-watch-minutes", "-1"], "--max-watch-minutes"),
    (["train", "--date", "not-a-date"], "--date"),
    (["train", "--date", "../../etc"], "--date"),
]


@pytest.mark.parametrize(("argv", "option"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_argument_is_a_usage_error_naming_the_option(argv: list[str], option: str) -> None:
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Invalid value" in result.output and option in result.output
    assert "Traceback" not in result.output
