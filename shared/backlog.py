"""The exact backlog per GPU queue: a Redis set of the ids of its jobs that are queued or running.

`BacklogHook` is a lifecycle hook every `Lifecycle` carries, so each status change updates the set in its own
transaction, on every path (submit, start, succeed, fail, cancel, requeue by SIGTERM or by the reaper after a
kill -9). KEDA's redis scaler reads the set's size (SCARD) to scale the GPU workers.
"""

from shared import keys
from shared.queue import queue_for


class BacklogHook:
    """Adds a job to its queue's backlog while it is queued or running, and takes it out when it ends."""

    def in_transaction(self, pipe, change) -> None:
        """SADD or SREM in the change's own transaction (progress reports change nothing here)."""
        if change.before is not None and change.before == change.after:
            return  # progress, or a redelivered start: the set already holds it
        key = keys.backlog_key(queue_for(change.batch_id))
        if change.after.is_terminal:
            pipe.srem(key, change.job_id)
        else:
            pipe.sadd(key, change.job_id)

    def after(self, change) -> None:
        """Nothing: the set changed with the status."""
