"""Event feeds: what a job's or a batch's event stream follows, apart from HTTP (api/events.py serves it)."""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from api.services import services
from api.usecases.owner import owned_batch, owned_job
from shared.batch_store import BatchStore
from shared.errors import NotFound
from shared.event_stream import StreamReader
from shared.store import JobStore


@dataclass(frozen=True)
class Feed:
    """One stream to follow: its reader, where to start, and how to tell that nothing more will come."""

    reader: StreamReader  # on a connection of its own: close it when the stream ends
    after: str
    is_done: Callable[[], bool]
    presign: Callable[[str], str]  # object key -> URL, for snapshot events


def job_feed(job_id: str, after: str, *, timeout_s: float) -> Feed:
    """A job's events after ``after``; NotFound before anything is opened when the caller has no such job."""
    store = services().store  # captured now: the stream outlives the request context
    job_id = owned_job(job_id).id
    done = functools.partial(_job_done, store, job_id)
    return Feed(store.follow_job(job_id, timeout_s=timeout_s), after, done, services().objects.presign)


def batch_feed(batch_id: str, after: str, *, timeout_s: float) -> Feed:
    """Every item's events of a batch after ``after``, interleaved; done once no item is queued or running."""
    batches = services().batches  # captured now: the stream outlives the request context
    batch = owned_batch(batch_id)
    done = functools.partial(_batch_done, batches, batch.id)
    reader = services().store.follow_batch(batch.id, timeout_s=timeout_s)
    return Feed(reader, after, done, services().objects.presign)


def _job_done(store: JobStore, job_id: str) -> bool:
    try:
        return store.get(job_id).status.is_terminal
    except NotFound:  # expired while followed: nothing more will come
        return True


def _batch_done(batches: BatchStore, batch_id: str) -> bool:
    return not any(row.active for row in batches.rows(batch_id))
