"""The port through which jobs are handed to the GPU workers (by the API, and by workers that requeue), and
its Celery adapter."""

from typing import Protocol

from shared import keys


class JobQueue(Protocol):
    """Hands a stored job to the workers."""

    def enqueue(self, job_id: str, *, queue: str) -> None: ...


class CeleryJobQueue:
    """Sends the stylize task by name, so the sender never imports the worker's TensorFlow code."""

    def __init__(self, *, celery) -> None:
        self._celery = celery

    def enqueue(self, job_id: str, *, queue: str = keys.INTERACTIVE_QUEUE) -> None:
        """Queue one job for the GPU workers."""
        self._celery.send_task(keys.STYLIZE_TASK, args=[job_id], queue=queue)


def dispatch(queue: JobQueue, store, job_id: str, batch_id: str = "") -> None:
    """Send a queued job's message, then take it out of the store's outbox (a crash in between only means the
    reaper sends it again; a second delivery of a job is harmless)."""
    queue.enqueue(job_id, queue=queue_for(batch_id))
    store.dispatched(job_id)


def queue_for(batch_id: str) -> str:
    """The Celery queue a job goes on: single jobs ahead of batch items."""
    return keys.BULK_QUEUE if batch_id else keys.INTERACTIVE_QUEUE
