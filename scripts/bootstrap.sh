#!/usr/bin/env bash
# Installs everything the platform needs on a fresh Debian 12 machine, idempotently:
# Debian packages (Redis, PostgreSQL, Maven, Java), the virtualenv with the project, the Java jars
# from Maven Central, and DAGSTER_HOME under .state/. A second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# Monitoring (`stack up monitoring`, the promtool rule tests): Prometheus and Alertmanager.
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
# The viewer web app (netflix_assets/web): the caching edge, the browser tests' Chromium, and
# Node's npm for the player library (hls.js, package.json).
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "bootstrap: run as root, or install them first: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null; then
  echo "bootstrap: $PYTHON not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
stamp=".venv/.installed-$(cat setup.py | sha256sum | cut -c1-12)"
if [[ ! -f $stamp ]]; then
  echo "bootstrap: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip setuptools wheel
  .venv/bin/pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

.venv/bin/netflix-assets stack jars
# The player library, pinned by package-lock.json; node_modules/ is ignored.
if [[ ! -f node_modules/.installed-$(sha256sum package-lock.json | cut -c1-12) ]]; then
  echo "bootstrap: installing the web app's npm packages"
  npm ci --no-audit --no-fund --silent
  touch "node_modules/.installed-$(sha256sum package-lock.json | cut -c1-12)"
fi
# PyFlink's pins clash with pyspark's, so the QoE job has its own environment, .venv-flink.
scripts/bootstrap_flink.sh

mkdir -p .state/dagster
ln -sf ../../dagster.yaml .state/dagster/dagster.yaml
