"""Single jobs: submit and read."""

import json
import re
import time
import uuid
from datetime import UTC, datetime

from flask import Blueprint, jsonify, request, url_for

from api.args import int_arg
from api.idempotent import create_once
from api.services import services
from api.submission import Submission, Upload, parse_submission
from shared import keys
from shared.errors import Conflict, NotFound
from shared.jobs import JobRecord, JobStatus

JOB_ID = re.compile(r"[0-9a-f]{32}")
# Most records one listing request returns: each costs a few Redis reads and presigned URLs.
LIST_MAX = 100

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")


@bp.post("")
def create_job():
    """Validate, store the inputs, record the job, enqueue it; 202 with its URL."""
    submission = parse_submission(request.form, request.files, services().settings)
    job_id = create_once(_fingerprint(submission), lambda: _create(submission).id)
    location = url_for("jobs.get_job", job_id=job_id)
    return jsonify(job_json(services().store.get(job_id))), 202, {"Location": location}


def _fingerprint(submission: Submission) -> list[str]:
    webhook = json.dumps(submission.webhook.record_fields(), sort_keys=True, default=list)
    styles = [style.sha256 for style in submission.styles]
    return [submission.params.to_json(), submission.content.sha256, *styles, webhook]


def _create(submission: Submission) -> JobRecord:
    record = JobRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.QUEUED,
        params=submission.params,
        content_key=store_input(submission.content),
        style_keys=tuple(store_input(style) for style in submission.styles),
        created_at=time.time(),
        total_steps=submission.plan.total_steps,
        plan=submission.plan.to_dict(),
        **submission.webhook.record_fields(),
    )
    return services().lifecycle.queue(record)


@bp.get("")
def list_jobs():
    """The newest single jobs, newest first (?limit=, at most LIST_MAX); batch items are listed by batch."""
    limit = int_arg("limit", 20, 1, LIST_MAX)
    return jsonify(jobs=[job_json(record) for record in services().store.recent(limit)])


@bp.get("/<job_id>")
def get_job(job_id: str):
    """The job's snapshot: status, progress, losses, weights, error and result."""
    record, steps = services().store.get_with_snapshots(checked_id(job_id))
    return jsonify(job_json(record, steps))


@bp.post("/<job_id>/cancel")
def cancel_job(job_id: str):
    """Queued: canceled at once. Running: asked to stop (it checks every step). Finished: 409."""
    store = services().store
    record = store.get(checked_id(job_id))
    if record.status.is_terminal:
        raise Conflict(f"job is already {record.status.value}", field="id")
    try:
        record = services().lifecycle.cancel(
            record.id, "canceled before it started", only_from=(JobStatus.QUEUED,)
        )
    except Conflict:  # it started meanwhile: ask the worker to stop it (Conflict -> 409 if it also ended)
        store.request_cancel(record.id)
        return jsonify(job_json(store.get(record.id))), 202
    return jsonify(job_json(record)), 200


def checked_id(job_id: str) -> str:
    """A job id as the API issues them (32 hex digits), or NotFound."""
    if not JOB_ID.fullmatch(job_id):
        raise NotFound(f"no job with id {job_id[:64]!r}", field="id")
    return job_id


def store_input(upload: Upload) -> str:
    """Store an upload under its content address, once."""
    key = keys.input_object_key(upload.sha256, upload.info.extension)
    objects = services().objects
    if not objects.exists(key):
        objects.put(key, upload.data, upload.info.content_type)
    return key


def job_json(record: JobRecord, steps: list[int] | None = None) -> dict[str, object]:
    """The public JSON of a job (``steps``: its snapshot steps, when already read)."""
    total = max(record.total_steps, 1)
    return {
        "id": record.id,
        "status": record.status.value,
        "params": record.params.to_dict(),
        "progress": {"step": record.step, "total_steps": total, "fraction": round(record.step / total, 4)},
        "evaluations": record.evaluations,
        "losses": record.losses,
        "initial_losses": record.initial_losses,
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "attempt": record.attempt,
        "resumed_from_step": record.resumed_from_step,
        "checkpoint_step": record.checkpoint_step,
        "weights": {
            "mode": record.weights or None,
            "note": record.weights_note or None,
            "precision": record.precision or None,
        },
        "error": record.error or None,
        "plan": record.plan,
        "targets": record.targets or None,
        "cancel_requested": record.cancel_requested,
        "steps": _steps_json(record.id, steps),
        "result": _result_json(record),
        "batch_id": record.batch_id or None,
        "owner": record.owner,
    }


def _steps_json(job_id: str, steps: list[int] | None) -> list[dict[str, object]]:
    objects = services().objects
    steps = services().store.snapshots(job_id) if steps is None else steps
    return [{"step": step, "url": objects.presign(keys.step_object_key(job_id, step))} for step in steps]


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
