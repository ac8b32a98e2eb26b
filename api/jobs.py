"""Single jobs: submit and read."""

import re
import time
import uuid
from datetime import UTC, datetime

from flask import Blueprint, jsonify, request, url_for

from api.services import services
from api.submission import Upload, parse_submission
from shared import keys
from shared.errors import NotFound, QueueUnavailable
from shared.jobs import JobRecord, JobStatus

JOB_ID = re.compile(r"[0-9a-f]{32}")

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")


@bp.post("")
def create_job():
    """Validate, store the inputs, record the job, enqueue it; 202 with its URL."""
    svc = services()
    submission = parse_submission(request.form, request.files, svc.settings)
    record = JobRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.QUEUED,
        params=submission.params,
        content_key=store_input(submission.content),
        style_keys=tuple(store_input(style) for style in submission.styles),
        created_at=time.time(),
        total_steps=submission.plan.total_steps,
        plan=submission.plan.to_dict(),
    )
    svc.store.create(record)
    _enqueue(record)
    location = url_for("jobs.get_job", job_id=record.id)
    return jsonify(job_json(record)), 202, {"Location": location}


@bp.get("/<job_id>")
def get_job(job_id: str):
    """The job's snapshot: status, progress, losses, weights, error and result."""
    return jsonify(job_json(services().store.get(checked_id(job_id))))


def checked_id(job_id: str) -> str:
    """A job id as the API issues them (32 hex digits), or NotFound."""
    if not JOB_ID.fullmatch(job_id):
        raise NotFound(f"no job with id {job_id[:64]!r}", field="id")
    return job_id


def _enqueue(record: JobRecord) -> None:
    # A job that could not be queued must not sit in `queued` forever: fail it and tell the client.
    try:
        services().queue.enqueue(record.id, queue=keys.INTERACTIVE_QUEUE)
    except Exception as err:
        reason = f"could not enqueue the job ({type(err).__name__}); resubmit when the queue is back"
        services().store.transition(record.id, JobStatus.FAILED, finished_at=time.time(), error=reason)
        raise QueueUnavailable(reason) from err


def store_input(upload: Upload) -> str:
    """Store an upload under its content address, once."""
    key = keys.input_object_key(upload.sha256, upload.info.extension)
    objects = services().objects
    if not objects.exists(key):
        objects.put(key, upload.data, upload.info.content_type)
    return key


def job_json(record: JobRecord) -> dict[str, object]:
    """The public JSON of a job."""
    total = max(record.total_steps, 1)
    return {
        "id": record.id,
        "status": record.status.value,
        "params": record.params.to_dict(),
        "progress": {"step": record.step, "total_steps": total, "fraction": round(record.step / total, 4)},
        "losses": record.losses,
        "initial_losses": record.initial_losses,
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "attempt": record.attempt,
        "weights": {"mode": record.weights or None, "note": record.weights_note or None},
        "error": record.error or None,
        "plan": record.plan,
        "targets": record.targets or None,
        "result": _result_json(record),
        "batch_id": record.batch_id or None,
        "owner": record.owner,
    }


def _result_json(record: JobRecord) -> dict[str, object] | None:
    if not record.result_key:
        return None
    return {
        "key": record.result_key,
        "url": services().objects.presign(record.result_key),
        "url_expires_in_s": services().settings.presign_expiry_s,
        "width": record.result_width,
        "height": record.result_height,
    }


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None
