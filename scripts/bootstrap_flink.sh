#!/usr/bin/env bash
# The PyFlink virtualenv .venv-flink, idempotently. PyFlink gets its own environment because
# apache-flink 2.2 pins apache-beam, pandas<2.3 and pyarrow<17, which clash with pyspark[sql] in
# .venv. The project itself is not installed there: the job runs from the repository root
# (`.venv-flink/bin/python -m streaming.qoe_job`), so `streaming` and `netflix_assets` import from
# the working tree. Needs .venv (scripts/bootstrap.sh) for resolving the Kafka connector jar.
set -euo pipefail
cd "$(dirname "$0")/.."

# apache-flink and the connector in netflix_assets/stack/poms/flink.xml move together: connector
# 5.0.0-2.2 is built against Flink 2.2.1.
FLINK_PACKAGES=(apache-flink==2.2.1 "redis>=5,<8" "confluent-kafka>=2.6,<3")

PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null; then
  echo "bootstrap_flink: $PYTHON not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap_flink: .venv is missing; run scripts/bootstrap.sh (make bootstrap) first" >&2
  exit 1
fi

[[ -x .venv-flink/bin/python ]] || "$PYTHON" -m venv .venv-flink
stamp=".venv-flink/.installed-$(printf '%s\n' "${FLINK_PACKAGES[@]}" | sha256sum | cut -c1-12)"
if [[ ! -f $stamp ]]; then
  echo "bootstrap_flink: installing ${FLINK_PACKAGES[*]} into .venv-flink"
  .venv-flink/bin/pip install -q --upgrade pip setuptools wheel
  .venv-flink/bin/pip install -q "${FLINK_PACKAGES[@]}"
  rm -f .venv-flink/.installed-*
  touch "$stamp"
fi

.venv/bin/python -c "from netflix_assets.stack import jars; print(jars.resolve('flink'))" >/dev/null
mkdir -p .state/flink/checkpoints
