#!/usr/bin/env bash
# Start or stop the local stack: redis-server, moto's S3 server, the API, one GPU worker and one webhook worker,
# logs under run/.
# Usage: deploy/local/stack.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/local/env.sh
PY="${PYTHON:-.venv/bin/python}"
RUN="$STYLEFORGE_RUN_DIR"

start_bg() {  # name, command...: run in its own session, remember the pid, log to run/name.log
  local name=$1; shift
  setsid "$@" >"$RUN/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() {  # what, seconds, command...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out waiting for $what; see $RUN/*.log" >&2; return 1
}

http_ok() {  # url: answers 2xx (Python, so a bare Debian needs no curl)
  "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"
}

worker_ready() {  # ready, or give up at once when the worker has exited (e.g. no weights loaded)
  if ! kill -0 "$(cat "$RUN/worker.pid")" 2>/dev/null; then
    echo "the worker exited during start-up:" >&2; tail -20 "$RUN/worker.log" >&2; stop; exit 1
  fi
  grep -q " ready\." "$RUN/worker.log"
}

make_key() {  # an API key for the tenant `local`, made with the real admin command, kept where only we read it
  [ "$STYLEFORGE_AUTH" = required ] || { rm -f "$RUN/api_key"; return 0; }
  (umask 077; "$PY" -m client.cli keys create --tenant local >"$RUN/api_key.new" 2>"$RUN/keys.log") \
    || { cat "$RUN/keys.log" >&2; stop; exit 1; }
  mv "$RUN/api_key.new" "$RUN/api_key"
}

start() {
  mkdir -p "$RUN"
  command -v redis-server >/dev/null || { echo "redis-server missing: run 'make deps'" >&2; exit 1; }
  start_bg redis redis-server --port "$STYLEFORGE_LOCAL_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN"
  start_bg s3 "$PY" -m moto.server -H 127.0.0.1 -p "$STYLEFORGE_LOCAL_S3_PORT"
  wait_for redis 20 redis-cli -p "$STYLEFORGE_LOCAL_REDIS_PORT" ping
  wait_for "S3 server" 30 http_ok "$STYLEFORGE_S3_ENDPOINT_URL/"
  make_key
  start_bg api "$PY" -m client.cli api --host 127.0.0.1 --port "$STYLEFORGE_LOCAL_API_PORT"
  start_bg worker "$PY" -m client.cli worker --hostname "local@%h"
  # Webhook deliveries: their own light worker (threads, no model), so the GPU worker never waits on HTTP.
  start_bg hooks "$PY" -m celery -A worker.celery_app worker -Q webhooks --pool threads --concurrency 4 \
    --hostname "hooks@%h" --loglevel INFO
  wait_for API 60 http_ok "$STYLEFORGE_API_URL/readyz"
  wait_for worker 300 worker_ready || { tail -20 "$RUN/worker.log" >&2; stop; exit 1; }
  wait_for "webhook worker" 60 grep -q " ready\." "$RUN/hooks.log" || { tail -20 "$RUN/hooks.log" >&2; stop; exit 1; }
  echo "stack up: API $STYLEFORGE_API_URL, S3 $STYLEFORGE_S3_ENDPOINT_URL, Redis $STYLEFORGE_REDIS_URL, logs in $RUN/"
  [ ! -s "$RUN/api_key" ] || echo "API key of tenant local in $RUN/api_key: export STYLEFORGE_API_KEY=\"\$(cat $RUN/api_key)\""
  [ ! -s "$RUN/metrics_token" ] || echo "metrics: curl -H \"Authorization: Bearer \$(cat $RUN/metrics_token)\" $STYLEFORGE_API_URL/metrics"
}

stop() {
  for name in hooks worker api s3 redis; do
    local pidfile="$RUN/$name.pid"
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  rm -f "$RUN/api_key"  # its Redis is gone, and the key with it
  echo "stack stopped"
}

status() {
  for name in redis s3 api worker hooks; do
    if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then echo "$name: up"; else echo "$name: down"; fi
  done
}

"${1:-status}"
