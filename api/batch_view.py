"""The public JSON of a batch (counts, progress, ETA, a page of items) and the entries of its results zip."""

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import PurePosixPath

from api.services import services
from api.zipstream import stream_zip
from shared.batches import PARTIAL, BatchRecord
from shared.jobs import ACTIVE_STATUSES, JobStatus


def batch_json(batch: BatchRecord, *, offset: int = 0, limit: int = 100) -> dict[str, object]:
    """Snapshot of a batch, reading every item's listing fields in one pipelined round trip."""
    rows = services().batches.items(services().batches.job_ids(batch.id))
    counts = Counter(row["status"] for row in rows)
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    return {
        "id": batch.id,
        "status": batch_status(counts),
        "params": batch.params.to_dict(),
        "style_keys": list(batch.style_keys),
        "created_at": batch.created_at,
        "items_total": batch.items_total,
        "counts": {status.value: counts.get(status.value, 0) for status in JobStatus},
        "progress": _progress(rows),
        "eta_s": _eta(rows),
        "targets": dict(Counter(row["targets"] for row in rows if row["targets"])),
        "skipped": list(batch.skipped),
        "thumbnail": _thumbnail(rows),
        "items": [_item_json(row) for row in page],
        "next_offset": offset + limit if more and limit else None,
    }


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
    rows = services().batches.items(services().batches.job_ids(batch.id))
    done = [row for row in rows if row["status"] == JobStatus.SUCCEEDED.value and row["result_key"]]
    entries = (
        (result_path(row["path"], row["result_key"]), lambda key=row["result_key"]: objects.get(key))
        for row in done
    )
    return stream_zip(entries)


def result_path(path: str, result_key: str) -> str:
    """The item's relative path with the result's extension (a.jpg stylized to png is a.png)."""
    return str(PurePosixPath(path).with_suffix(PurePosixPath(result_key).suffix))


def _item_json(row: dict[str, str]) -> dict[str, object]:
    result = None
    if row["result_key"]:
        result = {
            "key": row["result_key"],
            "url": services().objects.presign(row["result_key"]),
            "path": result_path(row["path"], row["result_key"]),
            "width": int(row["result_width"] or 0),
            "height": int(row["result_height"] or 0),
        }
    return {
        "job_id": row["id"],
        "path": row["path"],
        "status": row["status"],
        "step": int(row["step"] or 0),
        "total_steps": int(row["total_steps"] or 0),
        "targets": row["targets"] or None,
        "started_at": float(row["started_at"]) if row["started_at"] else None,
        "finished_at": float(row["finished_at"]) if row["finished_at"] else None,
        "error": row["error"] or None,
        "result": result,
    }


def _thumbnail(rows: list[dict[str, str]]) -> str | None:
    """A presigned URL of the first finished result, to show the batch by; None before any."""
    done = next((row["result_key"] for row in rows if row["result_key"]), None)
    return services().objects.presign(done) if done else None


def _progress(rows: list[dict[str, str]]) -> dict[str, object]:
    total = sum(int(row["total_steps"] or 0) for row in rows)
    done = sum(_steps_done(row) for row in rows)
    return {"steps_done": done, "steps_total": total, "fraction": round(done / total, 4) if total else 1.0}


def _steps_done(row: dict[str, str]) -> int:
    # A finished item (whatever its outcome) needs no more steps.
    if row["status"] in ACTIVE_STATUSES:
        return int(row["step"] or 0)
    return int(row["total_steps"] or 0)


def _eta(rows: list[dict[str, str]]) -> float | None:
    """Seconds left at the step rate observed since the first item started; None before any progress."""
    started = [float(row["started_at"]) for row in rows if row["started_at"]]
    worked = sum(int(row["step"] or 0) for row in rows if row["started_at"])
    active = [row for row in rows if row["status"] in ACTIVE_STATUSES]
    remaining = sum(int(row["total_steps"] or 0) - int(row["step"] or 0) for row in active)
    if not started or worked == 0:
        return None
    rate = worked / max(time.time() - min(started), 1e-3)
    return round(remaining / rate, 1)
