"""Job groups: batch items of one shape bucket that a worker optimises together, one VGG19 pass for all.

The job Celery delivered leads. With ``STYLEFORGE_GROUP_JOBS`` = K > 1 it looks at the next items of its
batch that are still queued, have no checkpoint and share its buckets (`group_key`), and takes up to K-1 of
them: it leases each, as if Celery had delivered it here, and marks it running. Their own queue messages,
delivered later to any worker, find them leased or finished and are skipped. Only items fair share has
released are looked at (shared.fair_share): a held one has no message yet, and taking it would let its tenant
run more than its share.
A would-be companion whose result is cached (worker/result_cache.py) is served there and then, and never
joins: the leader checked its own cache key before it began to lead.

Each member keeps its own lease heartbeat, progress, cancel flag, checkpoints and result; a companion that
cannot start (a bad image) fails alone, and a companion is concluded (canceled, paused, succeeded) the moment
it ends, while the others go on. If the engine fails for the group, each job runs again alone. A kill -9
leaves the companions running without a lease, and the reaper requeues them, as for any job.
"""

import functools
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from shared.jobs import JobRecord
from worker.engine.checkpoint import TrainerState
from worker.engine.optimize import Outcome
from worker.engine.pipeline import JobInput, StylizeOptions, group_key, stylize_many
from worker.recovery import Heartbeat, LeaseLost, PauseCheck

log = logging.getLogger("styleforge.grouping")

# Queued items after the leader that are looked at, per place in the group.
LOOK_AHEAD = 4


@dataclass(frozen=True)
class Started:
    """A job marked running, with what the runner needs to finish it (its options are ``job.options``)."""

    record: JobRecord
    heartbeat: Heartbeat
    pause: PauseCheck
    sources: list[str]  # where each level's style targets came from: "computed" or "reused"
    alpha: np.ndarray | None
    job: JobInput


class Leases(Protocol):
    """The job leases a group takes for its companions (shared.leases.LeaseStore)."""

    holder: str  # who takes them: this worker, recorded on each job it starts

    def acquire(self, job_id: str) -> bool: ...

    def renew(self, job_id: str) -> bool: ...

    def release(self, job_id: str) -> None: ...


class GroupHost(Protocol):
    """What a job group needs of the worker that runs it: the runner is one (worker/runner.py)."""

    extractor: object  # the loaded VGG19 every member runs on
    leases: Leases

    @property
    def group_size(self) -> int:
        """The most jobs in one group (1: jobs are never grouped)."""

    @property
    def lease_s(self) -> float:
        """Seconds a companion's lease lasts unless its heartbeat renews it."""

    def options(self, record: JobRecord) -> StylizeOptions:
        """The job's engine options (computed once per job: pass them on to `start`)."""

    def queued_after(self, leader: JobRecord, limit: int) -> Iterator[JobRecord]:
        """The items of the leader's batch still queued, among the ``limit`` that come after it."""

    def has_checkpoint(self, record: JobRecord) -> bool:
        """Whether the job left a checkpoint (it resumes alone)."""

    def serve_cached(self, record: JobRecord) -> bool:
        """Succeed a leased job with a stored result of its cache key: True if it is done with."""

    def start(
        self, record: JobRecord, heartbeat: Heartbeat, *, resume: TrainerState | None, options: StylizeOptions
    ) -> Started | None:
        """Mark a leased job running and prepare its input; None if it was canceled meanwhile."""

    def conclude(self, started: Started, outcome: Outcome) -> None:
        """Record how the engine left a started job."""

    def fail(self, job_id: str, err: BaseException) -> None:
        """Mark the job failed with a reason a person can act on (its snapshots stored first)."""


class JobGroup:
    """The leader and the companions it took; a context that stops their heartbeats and frees their leases."""

    def __init__(self, host: GroupHost, leader: Started) -> None:
        self._host = host
        self._leader = leader
        self._companions: list[Started] = []
        self._concluded: set[str] = set()
        self._stack = ExitStack()

    def __enter__(self) -> "JobGroup":
        size, record = self._host.group_size, self._leader.record
        # A resumed leader goes alone: its levels and steps no longer line up with fresh companions'.
        if size > 1 and record.batch_id and self._leader.job.resume is None:
            try:
                self._fill(size)
            except Exception:  # a Redis or S3 error while looking: run with the companions taken so far
                log.exception("job %s: looking for companions failed; going on with %d", record.id, size)
        if self._companions:
            log.info("job %s leads a group of %d jobs", record.id, 1 + len(self._companions))
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    def stylize(self) -> Outcome:
        """Run the group; each companion is concluded the moment it ends. Returns the leader's outcome.

        If the engine fails for the group (out of memory, say), each job is run again alone, so one job's
        failure is never another's.
        """
        jobs = [self._leader.job] + [
            replace(member.job, on_outcome=functools.partial(self._conclude, member))
            for member in self._companions
        ]
        try:
            return stylize_many(self._host.extractor, jobs)[0]
        except Exception as err:
            if not self._companions:
                raise
            log.warning("a group of %d failed (%s); running each job alone", len(jobs), err)
        for member in self._companions:
            if member.record.id not in self._concluded:
                self._alone(member)
        (outcome,) = stylize_many(self._host.extractor, [self._leader.job])
        return outcome

    def _alone(self, member: Started) -> None:
        try:
            (outcome,) = stylize_many(self._host.extractor, [member.job])
        except Exception as err:
            log.exception("job %s (grouped, then alone) failed", member.record.id)
            return self._fail(member, err)
        self._conclude(member, outcome)

    def _conclude(self, member: Started, outcome: Outcome) -> None:
        """Record a companion's outcome as the runner would its own job's; its failures stay its own."""
        self._concluded.add(member.record.id)
        try:
            self._host.conclude(member, outcome)
        except LeaseLost as err:
            log.warning("job %s (grouped): %s; this worker writes nothing more for it", member.record.id, err)
        except Exception as err:
            log.exception("job %s (grouped) failed", member.record.id)
            self._fail(member, err)

    def _fail(self, member: Started, err: BaseException) -> None:
        self._concluded.add(member.record.id)
        if member.heartbeat.lost.is_set():
            return  # another worker owns the job now
        self._host.fail(member.record.id, err)

    def _fill(self, size: int) -> None:
        key = group_key(self._leader.job.options)
        for record in self._host.queued_after(self._leader.record, LOOK_AHEAD * size):
            options = self._host.options(record)
            member = self._claim(record, options) if group_key(options) == key else None
            if member is not None:
                self._companions.append(member)
            if 1 + len(self._companions) == size:
                return

    def _served_from_cache(self, record: JobRecord) -> bool:
        """Whether a leased would-be companion was served from the result cache (or failed trying)."""
        try:
            return self._host.serve_cached(record)
        except LeaseLost:
            return True  # another worker owns it now
        except Exception as err:
            log.exception("job %s (grouped) could not be served from the cache", record.id)
            self._host.fail(record.id, err)
            return True

    def _claim(self, record: JobRecord, options: StylizeOptions) -> Started | None:
        """Lease and start a companion that fits the group; None when it cannot (taken, resumed, refused)."""
        leases = self._host.leases
        if not leases.acquire(record.id):
            return None
        # A resumed job goes alone, from its checkpoint; a cached one is done before it would join.
        if self._host.has_checkpoint(record) or self._served_from_cache(record):
            leases.release(record.id)
            return None
        self._stack.callback(leases.release, record.id)
        heartbeat = self._stack.enter_context(Heartbeat(leases, record.id, self._host.lease_s))
        try:
            return self._host.start(record, heartbeat, resume=None, options=options)
        except Exception as err:
            log.exception("job %s (grouped) could not start", record.id)
            self._host.fail(record.id, err)
            return None
