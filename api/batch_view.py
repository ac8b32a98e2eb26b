"""The public JSON of a batch (counts, progress, ETA, a page of items) and the entries of its results zip.

Both presign or read the batch's objects: build them only for a batch the owner check let through
(api/usecases/owner.py)."""

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import PurePosixPath

from api.services import services
from api.zipstream import stream_zip
from shared.batches import PARTIAL, BatchRecord, ItemRow
from shared.jobs import JobStatus
from shared.outputs import output_extension, output_paths


def batch_json(batch: BatchRecord, *, offset: int = 0, limit: int = 100) -> dict[str, object]:
    """Snapshot of a batch, reading every item's listing fields in one pipelined round trip."""
    rows = services().batches.rows(batch.id)
    counts = Counter(row.status.value for row in rows)
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    names = _result_names(batch, rows)
    return {
        "id": batch.id,
        "status": batch_status(counts),
        "params": batch.params.to_dict(),
        "style_keys": list(batch.style_keys),
        "style_id": batch.style_id or None,
        "created_at": batch.created_at,
        "items_total": batch.items_total,
        "counts": _counts(counts, rows),
        "cache": batch.cache,
        "progress": _progress(rows),
        "eta_s": _eta(rows),
        "targets": dict(Counter(row.targets for row in rows if row.targets)),
        "skipped": list(batch.skipped),
        "output_prefix": batch.output_prefix or None,
        "manifest_key": batch.manifest_key or None,
        "thumbnail": _thumbnail(rows),
        "items": [_item_json(row, names) for row in page],
        "next_offset": offset + limit if more and limit else None,
    }


def _counts(counts: Counter, rows: list[ItemRow]) -> dict[str, int]:
    """Items per status, and ``cached``: the succeeded ones served from the result cache."""
    per_status = {status.value: counts.get(status.value, 0) for status in JobStatus}
    cached = sum(1 for row in rows if row.cached and row.status is JobStatus.SUCCEEDED)
    return {**per_status, "cached": cached}


def batch_status(counts: Counter) -> str:
    """queued/running while any item is; then succeeded, failed, canceled, or partial for a mix."""
    if counts.get(JobStatus.RUNNING.value):
        return "running"
    if counts.get(JobStatus.QUEUED.value):
        done = sum(counts.values()) - counts[JobStatus.QUEUED.value]
        return "running" if done else "queued"
    present = [status for status, count in counts.items() if count]
    return present[0] if len(present) == 1 else PARTIAL


def zip_entries(batch: BatchRecord) -> Iterator[bytes]:
    """The results zip's bytes: succeeded items under their relative paths, with the output's extension."""
    objects = services().objects  # captured now: the stream outlives the request context
    rows = services().batches.rows(batch.id)
    done = [row for row in rows if row.status is JobStatus.SUCCEEDED and row.result_key]
    names = _result_names(batch, rows)
    entries = ((names[row.path], lambda key=row.result_key: objects.get(key)) for row in done)
    return stream_zip(entries)


def _result_names(batch: BatchRecord, rows: list[ItemRow]) -> dict[str, str]:
    """Each item's relative output path, as the zip, the CLI and the bucket's mirrored tree name it."""
    return output_paths([row.path for row in rows], output_extension(batch.params.output_format))


def _item_json(row: ItemRow, names: dict[str, str]) -> dict[str, object]:
    result = None
    if row.result_key:
        path = names[row.path]  # saved under its own name, as the zip holds it
        result = {
            "key": row.result_key,
            "url": services().objects.presign(row.result_key, download_name=PurePosixPath(path).name),
            "path": path,
            "width": row.result_width,
            "height": row.result_height,
        }
    return {
        "job_id": row.id,
        "path": row.path,
        "status": row.status.value,
        "step": row.step,
        "total_steps": row.total_steps,
        "targets": row.targets or None,
        "cached": row.cached,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "error": row.error or None,
        "result": result,
    }


def _thumbnail(rows: list[ItemRow]) -> str | None:
    """A presigned URL of the first finished result, to show the batch by; None before any."""
    done = next((row.result_key for row in rows if row.result_key), None)
    return services().objects.presign(done) if done else None


def _progress(rows: list[ItemRow]) -> dict[str, object]:
    total = sum(row.total_steps for row in rows)
    done = sum(_steps_done(row) for row in rows)
    return {"steps_done": done, "steps_total": total, "fraction": round(done / total, 4) if total else 1.0}


def _steps_done(row: ItemRow) -> int:
    # A finished item (whatever its outcome) needs no more steps.
    return row.step if row.active else row.total_steps


def _eta(rows: list[ItemRow]) -> float | None:
    """Seconds left at the step rate observed since the first item started; None before any progress."""
    started = [row.started_at for row in rows if row.started_at]
    worked = sum(row.step for row in rows if row.started_at)
    remaining = sum(row.total_steps - row.step for row in rows if row.active)
    if not started or worked == 0:
        return None
    rate = worked / max(time.time() - min(started), 1e-3)
    return round(remaining / rate, 1)
