#!/usr/bin/env bash
# The end-to-end demo on embedded defaults: start the stack, then materialize the asset graph.
# `netflix-assets demo` starts the stack itself (what is running is left alone), prints each step
# with its duration and figures, and names the log file that holds Dagster's event log.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
netflix-assets demo
echo
echo "demo: the stack keeps running; browse the runs with:  make ui   (stop it with: make down)"
