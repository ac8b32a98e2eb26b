"""The exact number of jobs each tenant has queued or running: a Redis set of their ids per tenant.

`ActiveJobsHook` is a lifecycle hook every `Lifecycle` carries (like shared.backlog's), so each status change
updates the tenant's set in its own transaction, on every path (submit, cancel, end, requeue by the reaper).
The active-jobs quota reads the set's size (SCARD).
"""

from shared import keys


class ActiveJobsHook:
    """Adds a job to its owner's active set while it is queued or running, and takes it out when it ends."""

    def in_transaction(self, pipe, change) -> None:
        """SADD or SREM in the change's own transaction (progress reports change nothing here)."""
        if change.record is None or (change.before is not None and change.before == change.after):
            return  # progress, or a redelivered start: the set already holds it
        key = keys.active_jobs_key(change.record.owner)
        if change.after.is_terminal:
            pipe.srem(key, change.job_id)
        else:
            pipe.sadd(key, change.job_id)

    def after(self, change) -> None:
        """Nothing: the set changed with the status."""
