"""Plain-text summaries of jobs and batches for the terminal."""

from client.models import Batch, BatchItem, Job
from client.progress import format_eta


def batch_table(batch: Batch) -> str:
    """One row per item: path, status, and seconds taken or the error."""
    rows = [("path", "status", "seconds / error")] + [
        (item.path, item.status, _outcome(item)) for item in batch.items
    ]
    width = max(len(path) for path, _, _ in rows)
    return "\n".join(f"{path:<{width}}  {status:<9}  {outcome}".rstrip() for path, status, outcome in rows)


def skipped_lines(batch: Batch) -> str:
    """The uploaded files the server skipped, with its reasons ('' when none)."""
    if not batch.skipped:
        return ""
    lines = [f"skipped {len(batch.skipped)} file(s) that are not usable images:"]
    return "\n".join(lines + [f"  {skipped.path}: {skipped.reason}" for skipped in batch.skipped])


def batch_summary(batch: Batch) -> str:
    """A compact status of a batch: counts, steps, ETA."""
    counts = batch.counts
    return (
        f"batch {batch.id}: {batch.status or 'unknown'}, {counts.done}/{batch.items_total} done "
        f"({counts.succeeded} succeeded, {counts.failed} failed, {counts.canceled} canceled), "
        f"{counts.running} running, {counts.queued} queued; "
        f"steps {batch.steps_done}/{batch.steps_total}, eta {format_eta(batch.eta_s)}"
    )


def job_summary(job: Job) -> str:
    """A compact status of a job: status, steps, and its error or result."""
    line = f"job {job.id}: {job.status}, step {job.step}/{job.total_steps}"
    if job.batch_id:
        line += f" (batch {job.batch_id})"
    if job.error:
        line += f"\nerror: {job.error}"
    if job.result:
        line += f"\nresult: {job.result.width}x{job.result.height} {job.result.url}"
    return line


def not_succeeded(batch: Batch) -> str:
    """One line naming the items that did not succeed."""
    names = ", ".join(f"{item.path} ({item.status})" for item in batch.failed_items)
    return f"{len(batch.failed_items)} item(s) did not succeed: {names}"


def _outcome(item: BatchItem) -> str:
    if item.error:
        return " ".join(item.error.split())  # one line per item, whatever the worker wrote
    return f"{item.seconds:.1f}" if item.seconds is not None else ""
