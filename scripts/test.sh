#!/usr/bin/env bash
# The test suite: lint and format check, then pytest against the real local stack (started by the
# tests' fixture when it is down and stopped again afterwards). Any failure fails the run,
# including a selection that collects no tests (pytest's exit 5): a broken bootstrap or a
# mistyped path must not pass as green.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ruff check .
ruff format --check .
set +e
pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "test: pytest collected no tests (exit 5); failing: check the paths and -k/-m selection" >&2
fi
exit $rc
