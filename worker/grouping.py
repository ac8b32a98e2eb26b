"""Job groups: batch items of one shape bucket that a worker optimises together, one VGG19 pass for all.

The job Celery delivered leads. With ``STYLEFORGE_GROUP_JOBS`` = K > 1 it looks at the next items of its
batch that are still queued, have no checkpoint and share its buckets (`group_key`), and takes up to K-1 of
them: it leases each, as if Celery had delivered it here, and marks it running. Their own queue messages,
delivered later to any worker, find them leased or finished and are skipped.

Each member keeps its own lease heartbeat, progress, cancel flag, checkpoints and result; a companion that
cannot start (a bad image) fails alone. If the engine fails, every member fails with the reason. A kill -9
leaves the companions running without a lease, and the reaper requeues them, as for any job.
"""

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

from shared.errors import NotFound
from shared.jobs import JobRecord, JobStatus
from shared.plan import Plan
from worker.engine.optimize import Outcome
from worker.engine.pipeline import JobInput, group_key, stylize_many
from worker.job_options import stylize_options
from worker.recovery import Heartbeat, LeaseLost, PauseCheck

log = logging.getLogger("styleforge.grouping")

# Queued items after the leader that are looked at, per place in the group.
LOOK_AHEAD = 4


@dataclass(frozen=True)
class Started:
    """A job marked running, with what the runner needs to finish it."""

    record: JobRecord
    heartbeat: Heartbeat
    pause: PauseCheck
    sources: list[str]  # where each level's style targets came from: "computed" or "reused"
    alpha: object
    job: JobInput


class JobGroup:
    """The leader and the companions it took; a context that stops their heartbeats and frees their leases."""

    def __init__(self, runner, leader: Started) -> None:
        self._runner = runner
        self._members = [leader]
        self._stack = ExitStack()

    def __enter__(self) -> "JobGroup":
        size = self._runner.settings.group_jobs
        leader = self._members[0].record
        if size > 1 and leader.batch_id and self._runner.batches is not None:
            key = self._key(leader)
            for record in self._candidates(leader, size):
                member = self._claim(record, key)
                if member is not None:
                    self._members.append(member)
                if len(self._members) == size:
                    break
            if len(self._members) > 1:
                log.info("job %s leads a group of %d jobs", leader.id, len(self._members))
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    def stylize(self) -> list[Outcome]:
        """Every member's outcome, the leader's first; an engine failure fails the companions, then raises."""
        try:
            return stylize_many(self._runner.extractor, [member.job for member in self._members])
        except Exception as err:
            for member in self._members[1:]:
                self._runner.mark_failed(member.record.id, self._runner.describe(err))
            raise

    def conclude(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Record each companion's outcome; the leader's is returned for the runner, as for a job alone."""
        for member, outcome in zip(self._members[1:], outcomes[1:], strict=True):
            try:
                self._runner.conclude(member, outcome)
            except LeaseLost as err:
                log.warning(
                    "job %s (grouped): %s; this worker writes nothing more for it", member.record.id, err
                )
            except Exception as err:
                log.exception("job %s (grouped) failed", member.record.id)
                self._runner.mark_failed(member.record.id, self._runner.describe(err))
        return outcomes[:1]

    def _key(self, record: JobRecord) -> tuple:
        options = stylize_options(
            record.params,
            Plan.from_dict(record.plan),
            style_count=len(record.style_keys),
            progress_every=self._runner.settings.progress_every,
        )
        return group_key(options)

    def _candidates(self, leader: JobRecord, size: int) -> Iterator[JobRecord]:
        """Queued items of the leader's batch that come after it."""
        ids = self._runner.batches.job_ids(leader.batch_id)
        after = ids[ids.index(leader.id) + 1 :] if leader.id in ids else []
        for job_id in after[: LOOK_AHEAD * size]:
            try:
                record = self._runner.store.get(job_id)
            except NotFound:
                continue
            if record.status is JobStatus.QUEUED:
                yield record

    def _claim(self, record: JobRecord, key: tuple) -> Started | None:
        """Lease and start a companion that fits the group; None when it does not, or cannot start."""
        runner, leases = self._runner, self._runner.recovery.leases
        if self._key(record) != key or not leases.acquire(record.id):
            return None
        if runner.checkpoints.load(record.id) is not None:  # a resumed job goes alone, from its checkpoint
            leases.release(record.id)
            return None
        self._stack.callback(leases.release, record.id)
        heartbeat = self._stack.enter_context(Heartbeat(leases, record.id, runner.settings.lease_s))
        try:
            return runner.start(record, heartbeat, resume=None)
        except Exception as err:
            log.exception("job %s (grouped) could not start", record.id)
            runner.mark_failed(record.id, runner.describe(err))
            return None
