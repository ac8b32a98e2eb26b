"""Bulk batches: submit many assets with one style and one set of params, follow them, download a zip."""

import json
import time
import uuid

from flask import Blueprint, Response, jsonify, request, url_for

from api.args import int_arg
from api.batch_submission import BatchItem, BatchSubmission, parse_batch, parse_batch_json
from api.batch_view import batch_json, zip_entries
from api.idempotent import create_once
from api.jobs import LIST_MAX, checked_id, notify_completed, store_input
from api.services import services
from shared import keys
from shared.batches import BatchRecord
from shared.errors import Conflict, QueueUnavailable
from shared.jobs import JobRecord, JobStatus
from shared.params import StyleParams

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")


@bp.before_request
def _batch_limits() -> None:
    # Batches carry many files: a larger body and more multipart parts than a single job.
    settings = services().settings
    request.max_content_length = settings.batch_max_upload_bytes
    request.max_form_parts = settings.batch_max_items * 2 + 100


@bp.post("")
def create_batch():
    """Validate the whole batch, store inputs, record batch and jobs, enqueue the items on `bulk`.

    Three forms: multipart `content` files (filename = relative path), one `archive` zip, or JSON naming
    objects already in the bucket: `{"styles": [keys], "contents": [{"key", "path"}] | "prefix", "params"}`.
    """
    if request.is_json:
        submission = parse_batch_json(request.get_json(), services().settings, services().objects)
    else:
        submission = parse_batch(request.form, request.files, services().settings)
    batch_id = create_once(_fingerprint(submission), lambda: _create(submission))
    location = url_for("batches.get_batch", batch_id=batch_id)
    # The first page of items, as GET /v1/batches/{id} answers it: the new items' ids, each path's job.
    return jsonify(batch_json(services().batches.get(batch_id))), 202, {"Location": location}


def _fingerprint(submission: BatchSubmission) -> list[str]:
    items = [f"{item.path}:{item.upload.sha256 if item.upload else item.error}" for item in submission.items]
    webhook = json.dumps(submission.webhook.record_fields(), sort_keys=True, default=list)
    styles = [style.sha256 for style in submission.styles]
    return [submission.params.to_json(), *styles, *items, json.dumps(submission.skipped), webhook]


def _create(submission: BatchSubmission) -> str:
    style_keys = tuple(store_input(style) for style in submission.styles)
    batch = BatchRecord(
        id=uuid.uuid4().hex,
        params=submission.params,
        style_keys=style_keys,
        created_at=time.time(),
        items_total=len(submission.items),
        skipped=submission.skipped,
        **submission.webhook.record_fields(),
    )
    records = [_job_record(batch, item) for item in submission.items]
    services().batches.create(batch, records)
    _enqueue([record for record in records if record.status is JobStatus.QUEUED])
    return batch.id


@bp.get("")
def list_batches():
    """The newest batches, newest first (?limit=, at most LIST_MAX), each with its counts and a thumbnail.

    Each batch reads its items' listing fields (one pipelined round trip), so the limit is kept small."""
    limit = int_arg("limit", 20, 1, LIST_MAX)
    return jsonify(batches=[batch_json(batch, limit=0) for batch in services().batches.recent(limit)])


@bp.get("/<batch_id>")
def get_batch(batch_id: str):
    """Counts, aggregate progress, ETA, and one page of items (?offset=&limit=)."""
    batch = services().batches.get(checked_id(batch_id))
    offset = int_arg("offset", 0, 0, 10**6)
    limit = int_arg("limit", 100, 0, 1000)
    return jsonify(batch_json(batch, offset=offset, limit=limit))


@bp.get("/<batch_id>/results.zip")
def results_zip(batch_id: str):
    """The finished outputs under their relative paths, streamed one entry at a time."""
    batch = services().batches.get(checked_id(batch_id))
    headers = {"Content-Disposition": f'attachment; filename="batch-{batch.id}.zip"'}
    return Response(zip_entries(batch), mimetype="application/zip", headers=headers)


@bp.post("/<batch_id>/cancel")
def cancel_batch(batch_id: str):
    """Cancel the items still queued; running ones finish, finished ones stay downloadable."""
    batch = services().batches.get(checked_id(batch_id))
    svc = services()
    for row in svc.batches.items(svc.batches.job_ids(batch.id)):
        if row["status"] == JobStatus.QUEUED.value:
            try:
                canceled = svc.store.transition(
                    row["id"],
                    JobStatus.CANCELED,
                    expected=(JobStatus.QUEUED,),
                    finished_at=time.time(),
                    message="batch canceled",
                )
            except Conflict:  # a worker took it meanwhile: it runs to its end
                continue
            notify_completed(canceled)
    return jsonify(batch_json(batch, limit=0))


def _job_record(batch: BatchRecord, item: BatchItem) -> JobRecord:
    params: StyleParams = batch.params
    failed = item.upload is None
    return JobRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.FAILED if failed else JobStatus.QUEUED,
        params=params,
        content_key="" if failed else store_input(item.upload),
        style_keys=batch.style_keys,
        created_at=batch.created_at,
        batch_id=batch.id,
        path=item.path,
        total_steps=params.steps * params.levels,
        plan={} if failed else item.plan.to_dict(),
        error=item.error,
        finished_at=batch.created_at if failed else None,
        webhook=batch.webhook,
        webhook_events=batch.webhook_events,
    )


def _enqueue(records: list[JobRecord]) -> None:
    # Items the broker refused must not sit queued forever: fail them and say so.
    for index, record in enumerate(records):
        try:
            services().queue.enqueue(record.id, queue=keys.BULK_QUEUE)
        except Exception as err:
            reason = f"could not enqueue the item ({type(err).__name__}); resubmit when the queue is back"
            for left in records[index:]:
                services().store.transition(left.id, JobStatus.FAILED, finished_at=time.time(), error=reason)
            raise QueueUnavailable(reason) from err
    services().store.dispatched(*[record.id for record in records])
