"""Single jobs: submit, cancel, view and list, apart from HTTP."""

import json
import time
import uuid
from dataclasses import dataclass

from api.auth import current_tenant
from api.idempotent import create_once
from api.job_view import job_json
from api.services import services
from api.submission import Submission
from api.usecases.inputs import store_input, stored_style
from api.usecases.owner import owned_job, owned_job_with_snapshots
from api.usecases.quotas import check_job
from shared.errors import Conflict
from shared.jobs import JobRecord, JobStatus


def submit_job(submission: Submission, idempotency_key: str | None = None) -> dict[str, object]:
    """Store the inputs, record the job and send it to the workers (once per idempotency key); its JSON."""
    job_id = create_once(idempotency_key, _fingerprint(submission), lambda: _create(submission).id)
    return job_json(owned_job(job_id))


def _fingerprint(submission: Submission) -> list[str]:
    webhook = json.dumps(submission.webhook.record_fields(), sort_keys=True, default=list)
    styles = [style.sha256 for style in submission.styles]
    opted_out = [] if submission.cache else ["cache=false"]  # absent by default: older keys still match
    return [submission.params.to_json(), submission.content.sha256, *styles, webhook, *opted_out]


def _create(submission: Submission) -> JobRecord:
    check_job(submission)  # here, so an idempotent replay is answered whatever the quotas say now
    tenant = current_tenant()
    record = JobRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.QUEUED,
        params=submission.params,
        content_key=store_input(tenant, submission.content),
        style_keys=tuple(stored_style(tenant, style) for style in submission.styles),
        created_at=time.time(),
        owner=tenant,
        style_id=submission.style_id,
        cache=submission.cache,
        total_steps=submission.plan.total_steps,
        plan=submission.plan.to_dict(),
        **submission.webhook.record_fields(),
    )
    return services().lifecycle.queue(record)


@dataclass(frozen=True)
class Cancellation:
    """What a cancel did: ended the job now (it was queued), or asked its worker to stop it."""

    view: dict[str, object]
    ended: bool


def cancel_job(job_id: str) -> Cancellation:
    """Queued: canceled at once. Running: asked to stop (it checks every step). Finished: Conflict."""
    store = services().store
    record = owned_job(job_id)
    if record.status.is_terminal:
        raise Conflict(f"job is already {record.status.value}", field="id")
    try:
        record = services().lifecycle.cancel(
            record.id, "canceled before it started", only_from=(JobStatus.QUEUED,)
        )
    except Conflict:  # it started meanwhile: ask the worker to stop it (Conflict -> 409 if it also ended)
        store.request_cancel(record.id)
        return Cancellation(job_json(store.get(record.id)), ended=False)
    return Cancellation(job_json(record), ended=True)


def job_view(job_id: str) -> dict[str, object]:
    """The job's public JSON: status, progress, losses, weights, error, snapshots and result."""
    record, steps = owned_job_with_snapshots(job_id)
    return job_json(record, steps)


def list_jobs(limit: int) -> list[dict[str, object]]:
    """The caller's newest single jobs, newest first; batch items are listed by batch."""
    return [job_json(record) for record in services().store.recent(current_tenant(), limit)]
