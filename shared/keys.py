"""Every Redis key, object key and Celery queue name styleforge uses. Nothing else builds key strings."""

import re

PREFIX = "sf:"

# Celery queues, named for what they carry. GPU workers consume interactive first.
INTERACTIVE_QUEUE = "interactive"
BULK_QUEUE = "bulk"
WEBHOOKS_QUEUE = "webhooks"
GPU_QUEUES = (INTERACTIVE_QUEUE, BULK_QUEUE)

# Celery task names, shared by the API (which sends) and the worker (which runs).
STYLIZE_TASK = "styleforge.stylize"


def job_key(job_id: str) -> str:
    """Hash holding one job's snapshot."""
    return f"{PREFIX}job:{job_id}"


def job_events_key(job_id: str) -> str:
    """Capped stream of one job's status and progress events."""
    return f"{PREFIX}job:{job_id}:events"


def targets_lock_key(targets_object: str) -> str:
    """String held (SET NX PX) by the one worker computing a style's targets, named by their object key, so
    workers starting jobs of a new style at once compute them once (shared/target_locks.py)."""
    return f"{PREFIX}targets-lock:{targets_object}"


def job_steps_key(job_id: str) -> str:
    """Sorted set of the steps at which a job's intermediate images were stored."""
    return f"{PREFIX}job:{job_id}:steps"


def job_lease_key(job_id: str) -> str:
    """String naming the worker that runs a job, with a TTL the worker keeps renewing (SET NX PX)."""
    return f"{PREFIX}job:{job_id}:lease"


def running_jobs_key() -> str:
    """Set of the ids of jobs whose status is running: what the reaper checks for expired leases."""
    return f"{PREFIX}running"


def backlog_key(queue: str) -> str:
    """Set of the ids of the jobs queued or running on one GPU queue: the exact backlog an autoscaler reads.

    A Celery queue's list undercounts it (a job a worker took sits in kombu's unacked hash, priorities in
    sub-lists); this set is kept by the lifecycle's verbs in the same transaction as each status change.
    """
    return f"{PREFIX}backlog:{queue}"


def outbox_key() -> str:
    """Sorted set of queued jobs whose queue message may not be sent yet, scored by when they were queued.

    A job enters it in the same transaction that makes it `queued` and leaves once its message is sent (or it
    moves on); the reaper re-sends what a crashed sender left there.
    """
    return f"{PREFIX}outbox"


def reaper_lock_key() -> str:
    """String held by the one reaper acting at a time (SET NX PX)."""
    return f"{PREFIX}reaper:lock"


def fair_held_key(tenant: str) -> str:
    """List of a tenant's batch items held back by fair share (queued, no message yet), oldest first."""
    return f"{PREFIX}fair:{tenant}:held"


def fair_released_key(tenant: str) -> str:
    """Set of a tenant's batch items released onto the bulk queue and not yet ended (at most K of them)."""
    return f"{PREFIX}fair:{tenant}:released"


def fair_tenants_key() -> str:
    """Set of the tenants with held or released batch items: whom the reaper's release pass visits."""
    return f"{PREFIX}fair:tenants"


def batch_key(batch_id: str) -> str:
    """Hash holding one batch's snapshot."""
    return f"{PREFIX}batch:{batch_id}"


def batch_events_key(batch_id: str) -> str:
    """Capped stream of the status and progress events of every job in one batch."""
    return f"{PREFIX}batch:{batch_id}:events"


def batch_jobs_key(batch_id: str) -> str:
    """List of the job ids of one batch, in submission order."""
    return f"{PREFIX}batch:{batch_id}:jobs"


def recent_jobs_key(tenant: str) -> str:
    """Sorted set of one tenant's single (non-batch) job ids, scored by creation time, for its listings.

    One index per tenant, so a listing's limit counts the caller's own records (filtering a global index
    would return fewer than asked, or none, behind another tenant's many)."""
    return f"{PREFIX}recent:jobs:{tenant_segment(tenant)}"


def recent_batches_key(tenant: str) -> str:
    """Sorted set of one tenant's batch ids, scored by creation time, for its listings."""
    return f"{PREFIX}recent:batches:{tenant_segment(tenant)}"


def idempotency_key(tenant: str, key: str) -> str:
    """String mapping one tenant's Idempotency-Key to the id it created (another tenant's same key is
    another string: it never finds this tenant's record)."""
    return f"{PREFIX}idem:{tenant_segment(tenant)}:{key}"


def api_key_key(key_id: str) -> str:
    """Hash of one API key: tenant, the SHA-256 of its secret (never the secret), created and revoked times.

    No TTL: a key lives until it is revoked, and a revoked one stays to say when (`styleforge keys list`).
    """
    return f"{PREFIX}apikey:{key_id}"


def api_keys_index_key() -> str:
    """Set of every API key id, for `styleforge keys list`."""
    return f"{PREFIX}apikeys"


def style_key(style_id: str) -> str:
    """Hash of one saved style (issue 15): owner, name, its images' keys and sizes, blend weights, scale.

    No TTL: a house style lives until its tenant deletes it.
    """
    return f"{PREFIX}style:{style_id}"


def tenant_styles_key(tenant: str) -> str:
    """Sorted set of one tenant's saved style ids, scored by creation time, for its listing."""
    return f"{PREFIX}styles:{tenant_segment(tenant)}"


def result_cache_key(tenant: str, cache_key: str) -> str:
    """Hash naming the stored result of an earlier job of one tenant with the same cache key (issue 15):
    its job id, result object key, width and height. TTL: the job records' (a hit's own result is then
    recorded in its place). Per tenant: another tenant's same images and params never find it.
    """
    return f"{PREFIX}result:{tenant_segment(tenant)}:{cache_key}"


def rate_limit_prefix() -> str:
    """Prefix of Flask-Limiter's moving-window lists (limits' RedisStorage adds `:LIMITER/<key>/<scope>/...`).

    Each list holds one timestamp per request in its window and expires with it.
    """
    return f"{PREFIX}ratelimit"


def quota_key(tenant: str) -> str:
    """Hash of one tenant's quota overrides (`styleforge quotas set`); absent fields take the defaults.

    No TTL: an override lasts until `styleforge quotas reset`.
    """
    return f"{PREFIX}quota:{tenant}"


def active_jobs_key(tenant: str) -> str:
    """Set of the ids of one tenant's jobs that are queued or running: the active-jobs quota's exact count.

    Kept by the lifecycle's verbs in the same transaction as each status change (shared/active_jobs.py).
    """
    return f"{PREFIX}usage:{tenant}:active"


def items_per_day_key(tenant: str, day: str) -> str:
    """Counter of the batch items one tenant submitted on one UTC day (`YYYY-MM-DD`), with a TTL of 2 days."""
    return f"{PREFIX}usage:{tenant}:items:{day}"


# Object keys in the bucket: everything of a tenant under `tenants/{tenant}/`. Inputs are content-addressed
# within the tenant, so one style image serves a whole batch, and nothing tells what another tenant uploaded.

# Tenant names as shared.api_keys.TENANT_PATTERN admits them (a copy: keys imports nothing of the project).
TENANT_SEGMENT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# The tag every job output (result, snapshot, checkpoint) is stored with: the bucket's lifecycle rule expires
# what carries it (deploy/s3-lifecycle.json); a prefix rule cannot, as the tenant sits before `jobs/`.
JOB_OUTPUT_TAG = ("styleforge-expiry", "job-output")


def tenant_segment(tenant: str) -> str:
    """The tenant name, checked to be one safe key segment (no '/', '..', ':' or empty); ValueError else.

    Tenant names are validated when a key is created; this is the last line, where keys are built."""
    if not isinstance(tenant, str) or not TENANT_SEGMENT.fullmatch(tenant):
        raise ValueError(f"not a valid tenant name for a key: {tenant!r}")
    return tenant


def tenant_prefix(tenant: str) -> str:
    """The root of one tenant's objects: every key below starts with it."""
    return f"tenants/{tenant_segment(tenant)}/"


def input_object_key(tenant: str, sha256: str, extension: str) -> str:
    """Uploaded image, named by the SHA-256 of its bytes, in its tenant's inputs."""
    return f"{tenant_prefix(tenant)}inputs/{sha256}.{extension}"


def result_object_key(tenant: str, job_id: str, extension: str = "png") -> str:
    """Final stylized image of one job."""
    return f"{tenant_prefix(tenant)}jobs/{job_id}/result.{extension}"


def targets_object_key(tenant: str, cache_key: str) -> str:
    """Precomputed style targets (Gram matrices), shared by every worker, within one tenant only (a hit on
    another tenant's targets would tell, by its speed, that the other tenant used the same style image)."""
    return f"{tenant_prefix(tenant)}targets/{cache_key}.npz"


def checkpoint_object_key(tenant: str, job_id: str) -> str:
    """Resumable state of one running job (image, optimizer moments, step)."""
    return f"{tenant_prefix(tenant)}jobs/{job_id}/checkpoint.npz"


def step_object_key(tenant: str, job_id: str, step: int) -> str:
    """Intermediate image of one job at one step."""
    return f"{tenant_prefix(tenant)}jobs/{job_id}/steps/{step:06d}.png"


# First segments of a tenant's own namespaces: an output_prefix may not start with one, so a pipeline's
# outputs never overwrite an input (content-addressed: a wrong byte there would corrupt every later job that
# uses it), a job's objects, or the style targets. `cache` and `styles` are kept free for their own layouts.
RESERVED_SEGMENTS = frozenset({"inputs", "jobs", "targets", "cache", "styles"})
MANIFEST_NAME = "manifest.json"


def output_object_key(tenant: str, output_prefix: str, relative_path: str) -> str:
    """A batch item's copy where the pipeline reads it: the tenant's root, the batch's output_prefix (which
    ends with '/'), then the item's relative path with the output format's extension (shared/outputs.py)."""
    return f"{tenant_prefix(tenant)}{output_prefix}{relative_path}"


def manifest_object_key(tenant: str, output_prefix: str) -> str:
    """The manifest of a batch with an output_prefix, written once none of its items is queued or running."""
    return f"{tenant_prefix(tenant)}{output_prefix}{MANIFEST_NAME}"


def pending_manifests_key() -> str:
    """Set of the ids of batches with an output_prefix whose manifest is not written yet: the reaper's
    repair pass writes those that ended (a lifecycle hook's write lost to a crash or an S3 blip)."""
    return f"{PREFIX}manifests:pending"
