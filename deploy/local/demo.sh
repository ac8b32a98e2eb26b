#!/usr/bin/env bash
# `make demo`: start the local stack, stylize the examples through it, stop the stack whatever happens.
# `make gallery` runs the same stack with deploy/local/gallery.py instead (pass the script as $1).
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/local/env.sh
script="${1:-deploy/local/demo.py}"
trap 'deploy/local/stack.sh stop' EXIT
deploy/local/stack.sh start
# The key the start just made (its Redis keeps nothing, so it is new each start); none in open mode.
if [ -s "$STYLEFORGE_RUN_DIR/api_key" ]; then export STYLEFORGE_API_KEY="$(cat "$STYLEFORGE_RUN_DIR/api_key")"; fi
built=$(grep -h "VGG19 built" "$STYLEFORGE_RUN_DIR/worker.log" | head -1)
echo "worker: ${built#*styleforge.worker: }"
"${PYTHON:-.venv/bin/python}" "$script"
