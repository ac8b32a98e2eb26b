"""The API's use cases: what each request does, apart from HTTP. Blueprints parse the request, call one of
these, and shape the answer; the owner check of tenants goes here, in one place."""

from api.usecases.batches import batch_view, batch_zip, cancel_batch, list_batches, submit_batch
from api.usecases.feeds import Feed, batch_feed, job_feed
from api.usecases.jobs import Cancellation, cancel_job, job_view, list_jobs, submit_job
from api.usecases.styles import requested_style

__all__ = [
    "Cancellation",
    "Feed",
    "batch_feed",
    "batch_view",
    "batch_zip",
    "cancel_batch",
    "cancel_job",
    "job_feed",
    "job_view",
    "list_batches",
    "list_jobs",
    "requested_style",
    "submit_batch",
    "submit_job",
]
