"""Settings from STYLEFORGE_* (and the standard AWS_*) environment variables.

`Settings.from_env()` is called once, by the API's `create_app` or the worker's bootstrap, never at import.
Each default carries a note of why it has that value and in what unit.
"""

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from shared.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    """Deployment settings; see the README's configuration table."""

    # API authentication: `required` (every /v1 route needs an API key, `styleforge keys create`) or `open`
    # (no keys, every job `anonymous`: local experiments only, and the API logs a warning at start).
    auth: str = "required"
    # Broker, result backend and job records all live in this Redis. Secrets (this URL may hold Redis's
    # password) are left out of the settings' repr, so a logged Settings shows none.
    redis_url: str = field(default="redis://localhost:6379/0", repr=False)
    # S3-compatible endpoint; empty means AWS S3 itself.
    s3_endpoint_url: str = ""
    s3_bucket: str = "styleforge"
    s3_region: str = "us-east-1"
    # Empty means boto3's own credential chain (env, profile, instance role).
    aws_access_key_id: str = ""
    aws_secret_access_key: str = field(default="", repr=False)
    # Attempts per S3 request, the first included (botocore standard mode: 5 rides out a few seconds of 5xx).
    s3_max_attempts: int = 5
    # Seconds to open a connection to S3 before the attempt counts as failed (a healthy endpoint takes ms).
    s3_connect_timeout_s: float = 5.0
    # Seconds one S3 socket read may wait; long enough for a slow PUT of a 25 MiB upload to be acknowledged.
    s3_read_timeout_s: float = 60.0
    # Most content images one batch may hold.
    batch_max_items: int = 1000
    # Bytes of one batch request (a zip or many files): 512 MiB.
    batch_max_upload_bytes: int = 512 * 1024 * 1024
    # Uncompressed bytes a batch zip may expand to (a zip-bomb guard): 2 GiB.
    batch_max_unzipped_bytes: int = 2 * 1024 * 1024 * 1024
    # Worker: comma list tried in order: imagenet | hed | random | a path to a .h5 file.
    vgg_weights: str = "imagenet"
    # Seed of the `random` weights, so tests are reproducible.
    random_weights_seed: int = 0
    # Worker: the dtype VGG19's convolutions compute in, auto | float32 | bfloat16 | float16 (the image and
    # the losses stay float32). `auto` times a few steps of a fixed probe job in float32 and bfloat16 at start
    # (a few seconds) and keeps bfloat16 only if faster and within 2 % of float32's loss: bfloat16 is 3.4x
    # faster on a Xeon with AMX, emulated and slower on CPUs without AMX-BF16/AVX512-BF16. Others apply as is.
    precision: str = "auto"
    # GPU workers only: XLA-compile the optimisation step. Ignored on a CPU, where XLA measured slower.
    xla: bool = False
    # Worker: threads in each of TensorFlow's pools (intra-op, inter-op); 0 = TensorFlow's default, one per
    # core. Set it when workers share a host's cores (1 each for 2 workers on 2 cores), or to a CPU pod's
    # limit, so the workers do not oversubscribe the cores.
    tf_threads: int = 0
    # Batch items of one shape bucket a worker optimises together (one VGG19 pass for all); 1 = one at a time.
    group_jobs: int = 1
    # API: whether a job or batch that does not say `cache` uses the result cache (worker/result_cache.py).
    # On: a re-run of unchanged inputs costs no GPU time. A submission's `cache=true|false` always wins.
    result_cache: bool = True
    # Batch items of one tenant released onto the bulk queue at a time (the rest wait, queued, in the tenant's
    # own FIFO list): another tenant's first item waits behind at most this many per tenant, not a whole
    # batch. Set it at least to the GPU slots one tenant should fill alone (workers x group_jobs), or GPUs
    # idle while a single tenant has work. 0 = no limit (fair share off: bulk items are served FIFO).
    fair_share_items: int = 4
    # Requests per API key (per client address in open mode), in Flask-Limiter's notation ("30/minute",
    # "5/second;100/hour"); "" = no limit. Submissions are every POST under /v1 but the cancels: 30 a minute
    # is one every 2 s, far above a pipeline's pace and far below what floods the queue and the bucket.
    rate_limit_submit: str = "30/minute"
    # Every other /v1 request (reads, an SSE connection once, cancels): 600 a minute, 10 a second, lets the
    # web page and a CLI poll many jobs at once.
    rate_limit_read: str = "600/minute"
    # Per tenant, unless `styleforge quotas set` overrides it: jobs queued or running at once (two batches of
    # batch_max_items in flight; a batch adds its items).
    quota_max_active_jobs: int = 2000
    # Batch items one tenant may submit per UTC day (ten full batches).
    quota_items_per_day: int = 10_000
    # Largest max_dim one tenant's jobs may ask for, in pixels (the deployment's max_dim_limit by default).
    quota_max_dim: int = 2048
    # Most optimisation steps one job may run over all its levels (the plan's total_steps): 20,000 is one
    # level of the largest `steps`.
    quota_max_steps: int = 20_000
    # Seconds a presigned result URL stays valid (1 hour: enough to download, short enough to leak little).
    presign_expiry_s: int = 3600
    # Bytes per request; larger bodies get 413 (25 MiB fits a 4K PNG).
    max_upload_bytes: int = 25 * 1024 * 1024
    # Decoded pixels per image; above this an upload is refused as a decompression bomb (about 8K x 6K).
    max_image_pixels: int = 50_000_000
    # Smallest accepted side in pixels, before and after resizing: VGG19 pools 4 times before block5.
    min_image_side: int = 16
    # Largest longest side a job may ask for, in pixels.
    max_dim_limit: int = 2048
    # Seconds job records live in Redis after creation (7 days), so Redis never grows without bound.
    job_ttl_s: int = 7 * 24 * 3600
    # Seconds an Idempotency-Key is remembered (24 hours, as Stripe does).
    idempotency_ttl_s: int = 24 * 3600
    # Entries kept per job event stream.
    events_maxlen: int = 1000
    # Steps between progress reports (each one reads losses back from the device).
    progress_every: int = 10
    # Seconds before Redis redelivers an unacked task; must exceed the longest job (6 hours).
    visibility_timeout_s: int = 6 * 3600
    # Steps between checkpoints of a running job (image + Adam moments to the bucket); 0 = never.
    checkpoint_every: int = 100
    # Seconds of work after which a running job also checkpoints, whatever its step count: a worker that dies
    # (an autoscaled node taken away) loses at most about this much. 0 = by steps only.
    checkpoint_every_s: float = 30.0
    # Seconds a running job's lease lives without renewal; a worker renews it every third of that. After a
    # worker dies, its job is requeued this long (plus up to one reaper interval) later.
    lease_s: float = 30.0
    # Seconds between two reaper passes (in every GPU worker; a Redis lock lets one act at a time).
    reaper_interval_s: float = 10.0
    # Seconds a worker told to stop (SIGTERM) may take to finish its step, checkpoint and requeue, then exit.
    shutdown_grace_s: float = 30.0
    # Port of a GPU worker's own Prometheus endpoint (GET /metrics); 0 = none. Each worker needs its own, so
    # deployments set it per container or pod (several workers on one host without containers: one each).
    metrics_port: int = 0
    # Address the worker's metrics port binds to: loopback, so only the host sees it, unless a deployment
    # whose Prometheus scrapes it from elsewhere widens it (compose and k8s set 0.0.0.0, and publish no port).
    metrics_addr: str = "127.0.0.1"
    # The API's GET /metrics: the Bearer token a scraper must send (compared in constant time). Empty turns
    # /metrics off (404) in required mode; open mode serves it to anyone. At least 16 characters.
    metrics_token: str = field(default="", repr=False)
    # Seconds one job may run (soft limit): then it checkpoints and fails with the reason (4 hours).
    job_time_limit_s: int = 4 * 3600
    # Comma list of webhook hosts exempt from the SSRF guard: `host` (any port) or `host:port` (`[::1]:8080`).
    webhook_allowlist: str = ""
    # Standard Webhooks signing secret, `whsec_` + base64 of 24-64 random bytes; empty refuses webhooks.
    webhook_secret: str = field(default="", repr=False)
    # Seconds one webhook POST may take (connect + read) before it counts as a failed attempt.
    webhook_timeout_s: float = 10.0
    # Delivery attempts per webhook, the first included (6: retries span about 5 minutes at 10 s backoff).
    webhook_max_attempts: int = 6
    # Seconds before the first retry; each later retry waits twice as long as the one before.
    webhook_backoff_s: float = 10.0

    def __post_init__(self) -> None:
        for name, minimum in _MINIMUMS.items():
            if getattr(self, name) < minimum:
                raise ConfigError(f"{_env_name(name)} must be at least {minimum}, got {getattr(self, name)}")
        if self.visibility_timeout_s <= self.job_time_limit_s:
            raise ConfigError("STYLEFORGE_VISIBILITY_TIMEOUT_S must exceed STYLEFORGE_JOB_TIME_LIMIT_S")
        if self.max_dim_limit < self.min_image_side:
            raise ConfigError("STYLEFORGE_MAX_DIM_LIMIT must be at least STYLEFORGE_MIN_IMAGE_SIDE")
        if self.webhook_secret:
            _check_webhook_secret(self.webhook_secret)
        _check_metrics_endpoint(self.metrics_addr, self.metrics_token)
        if self.auth not in AUTH_MODES:
            raise ConfigError(f"STYLEFORGE_AUTH must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"STYLEFORGE_PRECISION must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read settings from the environment (or the given mapping), once."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(_env_name(f.name))
            if raw is not None:
                values[f.name] = _coerce(f.name, raw, type(getattr(cls, f.name)))
        return cls(**values)

    def override(self, **changes: object) -> "Settings":
        """Return a copy with some values replaced (tests and create_app(config=...))."""
        return replace(self, **changes)


# Smallest sane value of each numeric setting; below it the deployment is misconfigured, not the user's job.
_MINIMUMS = {
    "presign_expiry_s": 1,
    "max_upload_bytes": 1024,
    "max_image_pixels": 1,
    "min_image_side": 1,
    "max_dim_limit": 1,
    "job_ttl_s": 60,
    "idempotency_ttl_s": 1,
    "events_maxlen": 1,
    "progress_every": 1,
    "visibility_timeout_s": 60,
    "checkpoint_every": 0,
    "checkpoint_every_s": 0,
    "lease_s": 1,
    "reaper_interval_s": 0.1,
    "shutdown_grace_s": 1,
    "metrics_port": 0,
    "tf_threads": 0,
    "job_time_limit_s": 1,
    "batch_max_items": 1,
    "batch_max_upload_bytes": 1024,
    "batch_max_unzipped_bytes": 1024,
    "webhook_timeout_s": 0.1,
    "webhook_max_attempts": 1,
    "webhook_backoff_s": 0,
    "s3_max_attempts": 1,
    "s3_connect_timeout_s": 0.1,
    "s3_read_timeout_s": 0.1,
    "group_jobs": 1,
    "fair_share_items": 0,
    "quota_max_active_jobs": 1,
    "quota_items_per_day": 1,
    "quota_max_dim": 1,
    "quota_max_steps": 1,
}

# The dtypes VGG19's convolutions can compute in (worker/engine/vgg.py reads this tuple).
COMPUTE_PRECISIONS = ("float32", "bfloat16", "float16")
# `auto` is resolved by the worker at start (worker/precision.py) to one of the others.
PRECISIONS = ("auto", *COMPUTE_PRECISIONS)
# STYLEFORGE_AUTH's values: `required` for deployments, `open` for local experiments.
AUTH_MODES = ("required", "open")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

# Standard Webhooks secrets are 24 to 64 bytes: shorter keys are guessable, longer ones add nothing to HMAC.
_WEBHOOK_SECRET_BYTES = (24, 64)


def _check_webhook_secret(secret: str) -> None:
    body = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(body, validate=True) if secret.startswith("whsec_") else b""
    except binascii.Error:
        key = b""
    low, high = _WEBHOOK_SECRET_BYTES
    if not low <= len(key) <= high:
        raise ConfigError(
            f"STYLEFORGE_WEBHOOK_SECRET must be whsec_ followed by the base64 of {low}-{high} random bytes; "
            "make one with: python -c 'import base64,os; "
            'print("whsec_" + base64.b64encode(os.urandom(32)).decode())\''
        )


# Shortest STYLEFORGE_METRICS_TOKEN accepted: 16 characters (`secrets.token_urlsafe(32)` gives 43).
METRICS_TOKEN_MIN_CHARS = 16


def _check_metrics_endpoint(addr: str, token: str) -> None:
    try:
        ipaddress.ip_address(addr)
    except ValueError as err:
        raise ConfigError(
            f"STYLEFORGE_METRICS_ADDR must be an IP address (127.0.0.1, 0.0.0.0, ::), got {addr!r}"
        ) from err
    if token and len(token) < METRICS_TOKEN_MIN_CHARS:
        raise ConfigError(
            f"STYLEFORGE_METRICS_TOKEN must have at least {METRICS_TOKEN_MIN_CHARS} characters; make one: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def _env_name(field_name: str) -> str:
    if field_name.startswith("aws_"):
        return field_name.upper()
    return "STYLEFORGE_" + field_name.upper()


def _coerce(name: str, raw: str, kind: type) -> object:
    if kind is str:
        return raw
    if kind is bool:
        if raw.strip().lower() not in _TRUE + _FALSE:
            raise ConfigError(f"{_env_name(name)}={raw!r} is not a valid bool (use 1/0, true/false)")
        return raw.strip().lower() in _TRUE
    try:
        return kind(raw)
    except ValueError as err:
        raise ConfigError(f"{_env_name(name)}={raw!r} is not a valid {kind.__name__}") from err
