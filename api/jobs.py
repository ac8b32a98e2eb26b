"""Single jobs over HTTP: submit, list, read, cancel (the work is in api.usecases)."""

from flask import Blueprint, jsonify, request, url_for

from api import usecases
from api.args import LIST_MAX, int_arg
from api.idempotent import HEADER as IDEMPOTENCY_HEADER
from api.services import services
from api.submission import parse_submission

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")


@bp.post("")
def create_job():
    """Validate, store the inputs, record the job, enqueue it; 202 with its URL."""
    saved = usecases.requested_style(request.form)
    submission = parse_submission(request.form, request.files, services().settings, saved)
    view = usecases.submit_job(submission, request.headers.get(IDEMPOTENCY_HEADER))
    return jsonify(view), 202, {"Location": url_for("jobs.get_job", job_id=view["id"])}


@bp.get("")
def list_jobs():
    """The newest single jobs, newest first (?limit=, at most LIST_MAX); batch items are listed by batch."""
    return jsonify(jobs=usecases.list_jobs(int_arg("limit", 20, 1, LIST_MAX)))


@bp.get("/<job_id>")
def get_job(job_id: str):
    """The job's snapshot: status, progress, losses, weights, error and result."""
    return jsonify(usecases.job_view(job_id))


@bp.post("/<job_id>/cancel")
def cancel_job(job_id: str):
    """Queued: canceled at once (200). Running: asked to stop, it checks every step (202). Finished: 409."""
    cancellation = usecases.cancel_job(job_id)
    return jsonify(cancellation.view), 200 if cancellation.ended else 202
