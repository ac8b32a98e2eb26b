"""Batches: submit, cancel, view, list and zip, apart from HTTP."""

import functools
import json
import time
import uuid
from collections.abc import Iterator

from api.auth import current_tenant
from api.batch_submission import BatchItem, BatchSubmission
from api.batch_view import batch_json, zip_entries
from api.idempotent import create_once
from api.services import services
from api.usecases.inputs import store_input, stored_style
from api.usecases.outputs import item_output_keys
from api.usecases.owner import owned_batch
from api.usecases.quotas import batch_within_quotas
from shared.batches import BatchRecord
from shared.errors import Conflict
from shared.jobs import JobRecord, JobStatus


def submit_batch(submission: BatchSubmission, idempotency_key: str | None = None) -> dict[str, object]:
    """Store the inputs, record the batch and its items, send the items to the workers; its public JSON with
    the first page of items, as GET /v1/batches/{id} answers it (each path's job id)."""
    create = functools.partial(_create_within_quotas, submission)
    batch_id = create_once(idempotency_key, _fingerprint(submission), create)
    return batch_json(owned_batch(batch_id))


def _fingerprint(submission: BatchSubmission) -> list[str]:
    items = [f"{item.path}:{item.upload.sha256 if item.upload else item.error}" for item in submission.items]
    webhook = json.dumps(submission.webhook.record_fields(), sort_keys=True, default=list)
    styles = [style.sha256 for style in submission.styles]
    opted_out = [] if submission.cache else ["cache=false"]  # absent by default: older keys still match
    fields = [submission.params.to_json(), *styles, *items, json.dumps(submission.skipped), webhook]
    return [*fields, submission.output_prefix, *opted_out]


def _create_within_quotas(submission: BatchSubmission) -> str:
    # Checked only when a batch is created: an idempotent replay is answered whatever the quotas say now.
    with batch_within_quotas(submission):
        return _create(submission)


def _create(submission: BatchSubmission) -> str:
    tenant = current_tenant()
    output_keys = item_output_keys(tenant, submission)  # checked before anything is stored
    batch = BatchRecord(
        id=uuid.uuid4().hex,
        params=submission.params,
        style_keys=tuple(stored_style(tenant, style) for style in submission.styles),
        created_at=time.time(),
        owner=tenant,
        style_id=submission.style_id,
        cache=submission.cache,
        items_total=len(submission.items),
        skipped=submission.skipped,
        output_prefix=submission.output_prefix,
        **submission.webhook.record_fields(),
    )
    records = [_job_record(batch, item, output_keys.get(item.path, "")) for item in submission.items]
    services().lifecycle.queue_batch(batch, records)
    return batch.id


def _job_record(batch: BatchRecord, item: BatchItem, output_key: str) -> JobRecord:
    params, failed = batch.params, item.upload is None
    return JobRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.FAILED if failed else JobStatus.QUEUED,
        params=params,
        content_key="" if failed else store_input(batch.owner, item.upload),
        style_keys=batch.style_keys,
        created_at=batch.created_at,
        owner=batch.owner,
        batch_id=batch.id,
        style_id=batch.style_id,
        cache=batch.cache,
        path=item.path,
        output_key=output_key,
        total_steps=params.steps * params.levels,
        plan={} if failed else item.plan.to_dict(),
        error=item.error,
        finished_at=batch.created_at if failed else None,
        webhook=batch.webhook,
        webhook_events=batch.webhook_events,
    )


def cancel_batch(batch_id: str) -> dict[str, object]:
    """Cancel the items still queued; running ones finish, finished ones stay downloadable."""
    svc = services()
    batch = owned_batch(batch_id)
    # Last first: the held items (fair share) leave before the released ones, whose endings would otherwise
    # release and send the batch's next items only to cancel them a moment later.
    for row in reversed(svc.batches.rows(batch.id)):
        if row.status is JobStatus.QUEUED:
            try:
                svc.lifecycle.cancel(row.id, "batch canceled", only_from=(JobStatus.QUEUED,))
            except Conflict:  # a worker took it meanwhile: it runs to its end
                continue
    return batch_json(batch, limit=0)


def batch_view(batch_id: str, *, offset: int = 0, limit: int = 100) -> dict[str, object]:
    """Counts, aggregate progress, ETA, and one page of items."""
    return batch_json(owned_batch(batch_id), offset=offset, limit=limit)


def list_batches(limit: int) -> list[dict[str, object]]:
    """The caller's newest batches, newest first, each with its counts and a thumbnail."""
    return [batch_json(batch, limit=0) for batch in services().batches.recent(current_tenant(), limit)]


def batch_zip(batch_id: str) -> tuple[str, Iterator[bytes]]:
    """The results zip's file name and bytes: finished outputs under their relative paths."""
    batch = owned_batch(batch_id)
    return f"batch-{batch.id}.zip", zip_entries(batch)
