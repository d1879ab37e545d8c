# Sourced by the Makefile's scripts: the local instance and the project's virtualenv.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.state/dagster}"
export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONUNBUFFERED=1
