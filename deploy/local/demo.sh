#!/usr/bin/env bash
# `make demo`: start the local stack, stylize the examples through it, stop the stack whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/local/env.sh
trap 'deploy/local/stack.sh stop' EXIT
deploy/local/stack.sh start
grep -h "VGG19 built" "$STYLEFORGE_RUN_DIR/worker.log" | sed 's/^.*styleforge.worker: /worker: /' || true
"${PYTHON:-.venv/bin/python}" deploy/local/demo.py
