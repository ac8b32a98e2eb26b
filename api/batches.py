"""Bulk batches over HTTP: submit many assets with one style and one set of params, follow them, download a
zip (the work is in api.usecases)."""

from flask import Blueprint, Response, jsonify, request, url_for

from api import usecases
from api.args import LIST_MAX, int_arg
from api.auth import current_tenant
from api.batch_submission import parse_batch, parse_batch_json
from api.idempotent import HEADER as IDEMPOTENCY_HEADER
from api.services import services

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
    objects already in the bucket: `{"styles": [keys], "contents": [{"key", "path"}] | "prefix", "params"}`,
    every key and the prefix under the caller's `tenants/{tenant}/` (else 403).
    """
    if request.is_json:
        body = request.get_json()
        saved = usecases.requested_style(body)
        svc = services()
        submission = parse_batch_json(body, svc.settings, svc.objects, current_tenant(), saved)
    else:
        saved = usecases.requested_style(request.form)
        submission = parse_batch(request.form, request.files, services().settings, saved)
    view = usecases.submit_batch(submission, request.headers.get(IDEMPOTENCY_HEADER))
    return jsonify(view), 202, {"Location": url_for("batches.get_batch", batch_id=view["id"])}


@bp.get("")
def list_batches():
    """The newest batches, newest first (?limit=, at most LIST_MAX), each with its counts and a thumbnail.

    Each batch reads its items' listing fields (one pipelined round trip), so the limit is kept small."""
    return jsonify(batches=usecases.list_batches(int_arg("limit", 20, 1, LIST_MAX)))


@bp.get("/<batch_id>")
def get_batch(batch_id: str):
    """Counts, aggregate progress, ETA, and one page of items (?offset=&limit=)."""
    offset, limit = int_arg("offset", 0, 0, 10**6), int_arg("limit", 100, 0, 1000)
    return jsonify(usecases.batch_view(batch_id, offset=offset, limit=limit))


@bp.get("/<batch_id>/results.zip")
def results_zip(batch_id: str):
    """The finished outputs under their relative paths, streamed one entry at a time."""
    filename, entries = usecases.batch_zip(batch_id)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(entries, mimetype="application/zip", headers=headers)


@bp.post("/<batch_id>/cancel")
def cancel_batch(batch_id: str):
    """Cancel the items still queued; running ones finish, finished ones stay downloadable."""
    return jsonify(usecases.cancel_batch(batch_id))
