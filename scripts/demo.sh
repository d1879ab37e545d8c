#!/usr/bin/env bash
# The end-to-end demo on embedded defaults: start the stack, then materialize the asset graph.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
netflix-assets stack up
netflix-assets demo
echo
echo "demo: the stack keeps running; browse the runs with:  make ui   (stop it with: make down)"
