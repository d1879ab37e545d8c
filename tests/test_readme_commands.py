"""Every command the README shows works verbatim in a fresh shell.

A fresh shell has no DAGSTER_HOME, no activated virtualenv and no project variables: the tests
run the README's own lines under `env -i` with only HOME and a system PATH. Cheap, side-effect
free lines run as written; the others (they upload, train, serve or stream) are checked to name a
command and options that exist, so the README cannot drift from the CLI.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from netflix_assets.settings import REPO_ROOT

FRESH_ENV = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin"}
RUN_VERBATIM = {("stack", "up"), ("stack", "status")}


def readme_commands() -> list[str]:
    """The `.venv/bin/netflix-assets …` lines of the README's bash blocks, comments removed."""
    text = (REPO_ROOT / "README.md").read_text()
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for raw in block.splitlines():
            line = re.sub(r"\s+#.*$", "", raw).strip()
            if ".venv/bin/netflix-assets" in line:
                lines.append(line)
    return lines


def _words(line: str) -> tuple[list[str], list[str]]:
    """(subcommand words, option names) of one README line."""
    argv = shlex.split(line)
    argv = argv[argv.index(".venv/bin/netflix-assets") + 1 :]
    words = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    options = [a.split("=")[0] for a in argv if a.startswith("--")]
    return words, options


def _fresh_shell(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=REPO_ROOT,
        env=FRESH_ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_readme_shows_cli_commands() -> None:
    assert len(readme_commands()) >= 8, readme_commands()


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_exists_in_a_fresh_shell(line: str) -> None:
    words, options = _words(line)
    # Only the command words: positional arguments (a file, a query) come after them.
    for depth in range(len(words), 0, -1):
        probe = _fresh_shell(f".venv/bin/netflix-assets {shlex.join(words[:depth])} --help")
        if probe.returncode == 0:
            break
    assert probe.returncode == 0, probe.stderr
    for option in options:
        assert option in probe.stdout, f"{line!r}: {option} is not an option of {words[:depth]}"


@pytest.mark.stack
@pytest.mark.parametrize(
    "line", [c for c in readme_commands() if tuple(_words(c)[0][:2]) in RUN_VERBATIM]
)
def test_cheap_readme_commands_run_verbatim(stack: dict[str, object], line: str) -> None:
    result = _fresh_shell(line)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dagster_cli_validates_in_a_fresh_shell() -> None:
    result = _fresh_shell(".venv/bin/dagster definitions validate -w workspace.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr
