"""The public JSON of a job, with presigned URLs of its objects: build it only for a record the owner check
let through (api/usecases/owner.py), never for an id a caller merely named."""

from datetime import UTC, datetime
from pathlib import PurePosixPath

from api.services import services
from shared import keys
from shared.jobs import JobRecord


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
        "attempt_started_at": _iso(record.attempt_started_at),
        "finished_at": _iso(record.finished_at),
        "attempt": record.attempt,
        "resumed_from_step": record.resumed_from_step,
        "worker": record.worker or None,
        "checkpoint_step": record.checkpoint_step,
        "weights": {
            "mode": record.weights or None,
            "note": record.weights_note or None,
            "precision": record.precision or None,
        },
        "error": record.error or None,
        "plan": record.plan,
        "targets": record.targets or None,
        "cache": record.cache,
        "cached": record.cached,
        "cache_key": record.cache_key or None,
        "engine_version": record.engine_version or None,
        "cancel_requested": record.cancel_requested,
        "steps": _steps_json(record, steps),
        "result": _result_json(record),
        "batch_id": record.batch_id or None,
        "style_id": record.style_id or None,
        "owner": record.owner,
    }


def _steps_json(record: JobRecord, steps: list[int] | None) -> list[dict[str, object]]:
    objects = services().objects
    steps = services().store.snapshots(record.id) if steps is None else steps
    return [
        {"step": step, "url": objects.presign(keys.step_object_key(record.owner, record.id, step))}
        for step in steps
    ]


def _result_json(record: JobRecord) -> dict[str, object] | None:
    if not record.result_key:
        return None
    return {
        "key": record.result_key,
        # Following the link saves the file (attachment): a download link, and still an <img> source.
        "url": services().objects.presign(record.result_key, download_name=download_name(record)),
        "url_expires_in_s": services().settings.presign_expiry_s,
        "width": record.result_width,
        "height": record.result_height,
    }


def download_name(record: JobRecord) -> str:
    """The file name a browser saves the result as: styleforge-<job id> with the result's extension."""
    return f"styleforge-{record.id}{PurePosixPath(record.result_key).suffix}"


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None
