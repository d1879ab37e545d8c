"""The test script cannot be fooled into green: a selection that collects nothing fails, the
format check runs, and a missing PyFlink virtualenv fails under CI instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QOE_TEST = "tests/streaming/test_qoe_job.py::test_qoe_windows_exact"


def run(cmd: list[str], cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    merged = {k: v for k, v in os.environ.items() if k != "CI"} | env
    return subprocess.run(cmd, cwd=cwd, env=merged, capture_output=True, text=True, timeout=300)


def script_copy(tmp_path: Path, test_source: str) -> Path:
    """The real scripts/test.sh and env.sh in a one-test project beside this virtualenv, so what
    is checked is the script itself, not the lint state of files other people are editing."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    for name in ("test.sh", "env.sh"):
        (root / "scripts" / name).write_text((REPO / "scripts" / name).read_text())
    (root / ".venv").symlink_to(REPO / ".venv")
    (root / "pyproject.toml").write_text('[tool.ruff]\nline-length = 100\nexclude = [".venv"]\n')
    (root / "test_one.py").write_text(test_source)
    return root


def test_no_tests_collected_fails_the_script(tmp_path: Path) -> None:
    root = script_copy(tmp_path, "def test_one() -> None:\n    assert 1 + 1 == 2\n")
    passed = run(["bash", "scripts/test.sh", "-q", "test_one.py"], cwd=root)
    assert passed.returncode == 0, passed.stdout[-2000:] + passed.stderr[-2000:]
    # A selection that matches nothing used to exit 0 ("treating as success").
    empty = run(["bash", "scripts/test.sh", "-q", "test_one.py", "-k", "nothing"], cwd=root)
    assert empty.returncode == 5, empty.stdout[-2000:] + empty.stderr[-2000:]
    assert "collected no tests" in empty.stderr


def test_unformatted_code_fails_the_script(tmp_path: Path) -> None:
    root = script_copy(tmp_path, "def test_one( ) -> None :\n    assert 1+1 == 2\n")
    done = run(["bash", "scripts/test.sh", "-q", "test_one.py"], cwd=root)
    assert done.returncode == 1
    assert "1 file would be reformatted" in done.stdout + done.stderr


def test_missing_pyflink_fails_under_ci_and_skips_with_a_reason_elsewhere(tmp_path) -> None:
    missing = str(tmp_path / "no-venv-flink" / "bin" / "python")
    pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", QOE_TEST]
    under_ci = run(pytest_cmd, CI="true", NETFLIX_ASSETS_FLINK_PYTHON=missing)
    assert under_ci.returncode == 1, under_ci.stdout[-2000:]
    assert "the PyFlink tests must run, not skip" in under_ci.stdout
    locally = run(pytest_cmd, NETFLIX_ASSETS_FLINK_PYTHON=missing)
    assert locally.returncode == 0, locally.stdout[-2000:]
    assert "1 skipped" in locally.stdout
    assert f"{missing} is missing: run scripts/bootstrap_flink.sh" in locally.stdout
