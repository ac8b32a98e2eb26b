#!/usr/bin/env bash
# `make demo`: start the local stack, stylize the examples through it, stop the stack whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/local/env.sh
trap 'deploy/local/stack.sh stop' EXIT
deploy/local/stack.sh start
built=$(grep -h "VGG19 built" "$STYLEFORGE_RUN_DIR/worker.log" | head -1)
echo "worker: ${built#*styleforge.worker: }"
# The worker tried imagenet, then hed, then random: tell the demo which one it got.
DEMO_WEIGHTS=$(sed -n 's/.*weights=\([^ ]*\) in .*/\1/p' <<<"$built")
export DEMO_WEIGHTS
"${PYTHON:-.venv/bin/python}" deploy/local/demo.py
