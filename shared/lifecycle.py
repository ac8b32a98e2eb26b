"""The job lifecycle: the only code that changes a job's status.

Each verb declares the statuses it may leave from (`LEAVES_FROM`) and the one it leads to (`LEADS_TO`). A verb
asked of a job in any other status raises Conflict and writes nothing; the check and the write (hash, event,
outbox and the reaper's index) are one Redis transaction, so an ending is never overwritten. Hooks hear of
every change: `in_transaction` adds writes to that same transaction (a backlog count, say), `after` runs once
it is committed (webhooks, metrics). The API, the runner, job groups, the reaper and the bootstrap all change
statuses through a `Lifecycle`; a unit test fails if any other module calls ``store.transition``. Every
Lifecycle carries shared.backlog's hook, which keeps the exact backlog per queue that KEDA scales on,
shared.leases' handover, which drops a requeued job's lease before its new message is sent,
shared.active_jobs' hook, which keeps each tenant's active jobs for its quota, and shared.fair_share's hook:
given a FairShare, a batch's items are held per tenant and released onto the bulk queue K at a time, the next
as one ends (`release`; the reaper repairs with `release_waiting`).

    queue     (new)            -> queued     a job recorded and its message sent (else failed, and raises)
    start     queued, running  -> running    running: redelivered after its worker died
    progress  running          -> running    the step and losses of a report; no status change
    succeed   running          -> succeeded
    fail      queued, running  -> failed
    cancel    queued, running  -> canceled
    requeue   running          -> queued     and its message sent again (it resumes from its checkpoint)
"""

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from shared import keys
from shared.active_jobs import ActiveJobsHook
from shared.backlog import BacklogHook
from shared.errors import Conflict, QueueUnavailable
from shared.fair_share import FairShare, FairShareHook
from shared.jobs import JobRecord, JobStatus
from shared.leases import LeaseHandover
from shared.metrics import MetricsHook
from shared.queue import JobQueue, dispatch, queue_for

log = logging.getLogger("styleforge.lifecycle")


class Verb(str, Enum):
    """What can happen to a job."""

    QUEUE = "queue"
    START = "start"
    PROGRESS = "progress"
    SUCCEED = "succeed"
    FAIL = "fail"
    CANCEL = "cancel"
    REQUEUE = "requeue"


_LIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
LEAVES_FROM: Mapping[Verb, tuple[JobStatus, ...]] = {
    Verb.QUEUE: (),  # a new record: there is nothing to leave
    Verb.START: _LIVE,
    Verb.PROGRESS: (JobStatus.RUNNING,),
    Verb.SUCCEED: (JobStatus.RUNNING,),
    Verb.FAIL: _LIVE,
    Verb.CANCEL: _LIVE,
    Verb.REQUEUE: (JobStatus.RUNNING,),
}
LEADS_TO: Mapping[Verb, JobStatus] = {
    Verb.QUEUE: JobStatus.QUEUED,
    Verb.START: JobStatus.RUNNING,
    Verb.PROGRESS: JobStatus.RUNNING,
    Verb.SUCCEED: JobStatus.SUCCEEDED,
    Verb.FAIL: JobStatus.FAILED,
    Verb.CANCEL: JobStatus.CANCELED,
    Verb.REQUEUE: JobStatus.QUEUED,
}


def allowed(verb: Verb, status: JobStatus) -> bool:
    """Whether ``verb`` may be asked of a job in ``status``."""
    return status in LEAVES_FROM[verb]


@dataclass(frozen=True)
class Report:
    """A progress report's numbers."""

    step: int
    total_steps: int
    losses: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One verb applied to one job, as hooks hear of it.

    ``before`` is None for a new record. ``record`` is the job as written (None for progress, which writes
    only its ``report``). A batch item refused at submission is queued as a new record already failed.
    """

    verb: Verb
    job_id: str
    batch_id: str
    before: JobStatus | None
    after: JobStatus
    record: JobRecord | None = None
    report: Report | None = None


class LifecycleHook:
    """Something told of every change; both methods do nothing unless overridden."""

    def in_transaction(self, pipe, change: Change) -> None:
        """Add writes to the change's own Redis transaction (called while it is being built)."""

    def after(self, change: Change) -> None:
        """React once the change is committed. Must not raise: the job goes on whatever a hook does."""


class WebhookHook(LifecycleHook):
    """Today's webhooks: started, throttled progress, and completed for each ending."""

    def __init__(self, notifier) -> None:
        self._notifier = notifier

    def after(self, change: Change) -> None:
        if change.verb is Verb.START:
            self._notifier.started(change.record)
        elif change.verb is Verb.PROGRESS:
            report = change.report
            self._notifier.progress(
                change.job_id, step=report.step, total_steps=report.total_steps, losses=report.losses
            )
        elif change.after.is_terminal and change.record is not None:
            self._notifier.completed(change.record)


class Lifecycle:
    """The verbs, over the job store (and the batch store and the queue, for the verbs that need them)."""

    def __init__(
        self,
        *,
        store,
        queue: JobQueue | None = None,
        batches=None,
        hooks: Sequence[LifecycleHook] = (),
        fair_share: FairShare | None = None,
    ) -> None:
        self._store = store
        self._queue = queue  # None: nothing is sent (a runner used alone, in unit tests)
        self._batches = batches
        self._fair = fair_share  # None: batch items are sent at once, and nothing is released here
        # The exact backlog, the job metrics, a requeued job's lease handover, each tenant's active jobs and
        # an ended item's fair-share place hold on every path, whoever builds the Lifecycle.
        fair = FairShareHook(fair_share, release=self.release)
        self._hooks = (BacklogHook(), MetricsHook(), LeaseHandover(), ActiveJobsHook(), fair, *hooks)

    def queue(self, record: JobRecord) -> JobRecord:
        """Record a new queued job and send its message. If the broker refuses, the job is failed with the
        reason and QueueUnavailable raised (a job never sits queued with no message)."""
        self._store.create(record, extra=self._extra(Verb.QUEUE, None))
        self._after(self._change(Verb.QUEUE, None, record))
        self._send_or_fail([record], what="job")
        return record

    def queue_batch(self, batch, records: Sequence[JobRecord]) -> None:
        """Record a batch and its items in one transaction, then send the queued items' messages.

        An item refused at submission (an unreadable file) is recorded failed. With fair share on, the items
        are held and only the tenant's first K released and sent. If the broker refuses, the items not yet
        sent are failed and QueueUnavailable raised.
        """
        self._batches.create(batch, records, extra=self._extra(Verb.QUEUE, None))
        for record in records:
            self._after(self._change(Verb.QUEUE, None, record))
        queued = [record for record in records if record.status is JobStatus.QUEUED]
        if self._fair is not None and self._fair.holds:
            self._release_or_fail(batch.owner, queued)
        else:
            self._send_or_fail(queued, what="item")

    def start(self, job_id: str, **changes: object) -> JobRecord:
        """queued (or redelivered running) -> running."""
        return self._apply(Verb.START, job_id, **changes)

    def progress(self, job_id: str, report: Report, *, initial: bool = False) -> None:
        """Record a running job's step and losses (``initial``: they are also its starting losses)."""
        before = JobStatus.RUNNING
        change = Change(Verb.PROGRESS, job_id, "", before, before, report=report)
        self._store.record_progress(
            job_id,
            step=report.step,
            total_steps=report.total_steps,
            losses=dict(report.losses),
            initial=initial,
            expected=LEAVES_FROM[Verb.PROGRESS],
            extra=lambda pipe, *_: self._in_transaction(pipe, change),
        )
        self._after(change)

    def succeed(self, job_id: str, **changes: object) -> JobRecord:
        """running -> succeeded, with the result's fields."""
        return self._apply(Verb.SUCCEED, job_id, finished_at=time.time(), **changes)

    def fail(
        self, job_id: str, reason: str, *, only_from: tuple[JobStatus, ...] = (), **changes
    ) -> JobRecord:
        """queued or running (or only ``only_from``, a subset) -> failed, with a reason to act on."""
        return self._apply(
            Verb.FAIL, job_id, only_from, message=reason, error=reason, finished_at=time.time(), **changes
        )

    def cancel(
        self, job_id: str, message: str, *, only_from: tuple[JobStatus, ...] = (), **changes
    ) -> JobRecord:
        """queued or running (or only ``only_from``, a subset) -> canceled."""
        return self._apply(
            Verb.CANCEL, job_id, only_from, message=message, finished_at=time.time(), **changes
        )

    def requeue(self, job_id: str, message: str, **changes: object) -> JobRecord:
        """running -> queued, and its message sent again: it resumes from its checkpoint on any worker."""
        record = self._apply(Verb.REQUEUE, job_id, message=message, **changes)
        if self._queue is not None:
            dispatch(self._queue, self._store, job_id, record.batch_id)
        return record

    def send(self, job_id: str, batch_id: str = "") -> None:
        """Send a queued job's message again (its sender stopped before confirming it): no status change."""
        dispatch(self._queue, self._store, job_id, batch_id)

    def release(self, tenant: str) -> list[str]:
        """Release the tenant's next held batch items (fair share) and send their messages: the ids released.

        A send that fails leaves the rest in the outbox, for the reaper to send again.
        """
        if self._fair is None:
            return []
        job_ids = self._fair.release(tenant)
        self._send_released(job_ids)
        return job_ids

    def release_waiting(self) -> list[str]:
        """The reaper's repair pass, for every tenant with items held or released: free the places of ids
        that expired or ended unseen, then release (a crash between an ending and its release)."""
        if self._fair is None:
            return []
        released = []
        for tenant in self._fair.tenants():
            self._fair.prune(tenant)
            released += self.release(tenant)
        return released

    def is_held(self, record: JobRecord) -> bool:
        """Whether fair share holds this queued item back (no message yet: a job group must not take it)."""
        return (
            self._fair is not None and bool(record.batch_id) and self._fair.is_held(record.owner, record.id)
        )

    def _apply(
        self, verb: Verb, job_id: str, only_from: tuple[JobStatus, ...] = (), *, message: str = "", **changes
    ) -> JobRecord:
        leaves = LEAVES_FROM[verb]
        if not set(only_from) <= set(leaves):
            raise ValueError(f"{verb.value} never leaves from {sorted(s.value for s in only_from)}")
        before: list[JobStatus] = []

        def extra(pipe, status: JobStatus, record: JobRecord) -> None:
            before.append(status)  # a retried transaction (WatchError) calls this again: the last counts
            self._in_transaction(pipe, self._change(verb, status, record))

        record = self._store.transition(
            job_id, LEADS_TO[verb], expected=only_from or leaves, message=message, extra=extra, **changes
        )
        self._after(self._change(verb, before[-1] if before else None, record))
        return record

    def _send_or_fail(self, records: Sequence[JobRecord], *, what: str) -> None:
        if self._queue is None:
            return
        for index, record in enumerate(records):
            try:
                self._queue.enqueue(record.id, queue=queue_for(record.batch_id))
            except Exception as err:
                reason = (
                    f"could not enqueue the {what} ({type(err).__name__}); resubmit when the queue is back"
                )
                for left in records[index:]:
                    self._fail_quietly(left.id, reason)
                raise QueueUnavailable(reason) from err
        self._store.dispatched(*[record.id for record in records])

    def _release_or_fail(self, tenant: str, records: Sequence[JobRecord]) -> None:
        """Release the tenant's first held items and send them; if the broker refuses, fail the batch's
        items not sent (held ones included) and raise QueueUnavailable."""
        job_ids, sent = self._fair.release(tenant), []
        try:
            self._send_released(job_ids, sent)
        except Exception as err:
            reason = f"could not enqueue the item ({type(err).__name__}); resubmit when the queue is back"
            for record in records:
                if record.id not in sent:
                    self._fail_quietly(record.id, reason)
            raise QueueUnavailable(reason) from err

    def _send_released(self, job_ids: Sequence[str], sent: list[str] | None = None) -> None:
        """Send released items' messages and confirm those sent (the others stay in the outbox)."""
        if self._queue is None:
            return
        sent = [] if sent is None else sent
        try:
            for job_id in job_ids:
                self._queue.enqueue(job_id, queue=keys.BULK_QUEUE)
                sent.append(job_id)
        finally:
            self._store.dispatched(*sent)

    def _fail_quietly(self, job_id: str, reason: str) -> None:
        try:
            self.fail(job_id, reason, only_from=(JobStatus.QUEUED,))
        except Conflict:  # a worker took it meanwhile (its message was sent after all)
            log.info("job %s not failed: it left queued meanwhile", job_id)

    def _extra(self, verb: Verb, before: JobStatus | None) -> Callable:
        return lambda pipe, record: self._in_transaction(pipe, self._change(verb, before, record))

    @staticmethod
    def _change(verb: Verb, before: JobStatus | None, record: JobRecord) -> Change:
        return Change(verb, record.id, record.batch_id, before, record.status, record=record)

    def _in_transaction(self, pipe, change: Change) -> None:
        for hook in self._hooks:
            hook.in_transaction(pipe, change)

    def _after(self, change: Change) -> None:
        for hook in self._hooks:
            try:
                hook.after(change)
            except Exception:  # a hook never fails the job or the request
                log.exception("job %s: a lifecycle hook failed after %s", change.job_id, change.verb.value)
