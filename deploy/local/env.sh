# Settings of the local stack that `make demo` and `make up` run. Sourced by stack.sh; override any by exporting it first.
export STYLEFORGE_RUN_DIR="${STYLEFORGE_RUN_DIR:-$PWD/run}"
export STYLEFORGE_LOCAL_REDIS_PORT="${STYLEFORGE_LOCAL_REDIS_PORT:-6391}"
export STYLEFORGE_LOCAL_S3_PORT="${STYLEFORGE_LOCAL_S3_PORT:-9091}"
export STYLEFORGE_LOCAL_API_PORT="${STYLEFORGE_LOCAL_API_PORT:-8091}"
export STYLEFORGE_REDIS_URL="${STYLEFORGE_REDIS_URL:-redis://127.0.0.1:$STYLEFORGE_LOCAL_REDIS_PORT/0}"
export STYLEFORGE_S3_ENDPOINT_URL="${STYLEFORGE_S3_ENDPOINT_URL:-http://127.0.0.1:$STYLEFORGE_LOCAL_S3_PORT}"
export STYLEFORGE_S3_BUCKET="${STYLEFORGE_S3_BUCKET:-styleforge}"
# The demo falls back from ImageNet (needs a download) to HED's pretrained VGG16 stand-in to random weights.
export STYLEFORGE_VGG_WEIGHTS="${STYLEFORGE_VGG_WEIGHTS:-imagenet,hed,random}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export STYLEFORGE_API_URL="http://127.0.0.1:$STYLEFORGE_LOCAL_API_PORT"
# API keys are required, as in a deployment: `stack.sh start` makes one for the tenant `local` into run/api_key
# (Redis keeps nothing across restarts here, so each start makes a new one); the demo and the CLI send it.
export STYLEFORGE_AUTH="${STYLEFORGE_AUTH:-required}"
if [ -z "${STYLEFORGE_API_KEY:-}" ] && [ -s "$STYLEFORGE_RUN_DIR/api_key" ]; then
  STYLEFORGE_API_KEY="$(cat "$STYLEFORGE_RUN_DIR/api_key")"
  export STYLEFORGE_API_KEY
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# Webhooks: a signing secret made once per run folder (never commit one), and local receivers allowed.
if [ -z "${STYLEFORGE_WEBHOOK_SECRET:-}" ]; then
  mkdir -p "$STYLEFORGE_RUN_DIR"
  [ -s "$STYLEFORGE_RUN_DIR/webhook_secret" ] || (umask 077; echo "whsec_$(head -c 32 /dev/urandom | base64 -w0)" >"$STYLEFORGE_RUN_DIR/webhook_secret")
  STYLEFORGE_WEBHOOK_SECRET="$(cat "$STYLEFORGE_RUN_DIR/webhook_secret")"
fi
export STYLEFORGE_WEBHOOK_SECRET
# The API's GET /metrics scrape token, made once per run folder too: without one, required mode turns /metrics off.
if [ -z "${STYLEFORGE_METRICS_TOKEN:-}" ]; then
  mkdir -p "$STYLEFORGE_RUN_DIR"
  [ -s "$STYLEFORGE_RUN_DIR/metrics_token" ] || (umask 077; head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' >"$STYLEFORGE_RUN_DIR/metrics_token")
  STYLEFORGE_METRICS_TOKEN="$(cat "$STYLEFORGE_RUN_DIR/metrics_token")"
fi
export STYLEFORGE_METRICS_TOKEN
export STYLEFORGE_WEBHOOK_ALLOWLIST="${STYLEFORGE_WEBHOOK_ALLOWLIST:-127.0.0.1,localhost}"
