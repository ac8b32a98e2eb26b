"""Job lifecycle: fetch inputs, run the engine, report progress, store the result, record the outcome.

Every status change is one method (`mark_running`, `mark_succeeded`, `mark_failed`, ...), made through the
job's Lifecycle (shared.lifecycle), which also tells the webhooks.
"""

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from shared import images, keys
from shared.batch_store import BatchStore
from shared.config import Settings
from shared.errors import Conflict, NotFound, StorageError, StoreUnavailable, StyleforgeError
from shared.fair_share import FairShare
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import Lifecycle, Report, WebhookHook
from shared.manifests import ManifestHook, ManifestWriter
from shared.metrics import STYLE_TARGETS
from shared.notify import WebhookNotifier
from shared.plan import Plan
from shared.queue import JobQueue
from shared.result_index import CachedResult, ResultIndex
from shared.storage import ObjectStore
from shared.store import JobStore
from shared.target_locks import locks_over
from worker.engine.checkpoint import Paused, TrainerState
from worker.engine.optimize import Canceled, Outcome, Progress, StepHooks, StylizeResult
from worker.engine.pipeline import JobInput, StylizeOptions
from worker.engine.version import ENGINE_VERSION
from worker.feedforward import FeedForwardUnavailable
from worker.grouping import JobGroup, Leases, Started
from worker.job_options import stylize_options
from worker.outputs import copy_output, write_output_copy
from worker.recovery import (
    CancelCheck,
    CheckpointClock,
    Checkpoints,
    Heartbeat,
    LeaseLost,
    NoLeases,
    PauseCheck,
)
from worker.result_cache import ResultCache, result_cache_key
from worker.style_cache import StyleTargetCache, cache_key
from worker.uploader import SnapshotUploader

log = logging.getLogger("styleforge.runner")


@dataclass(frozen=True)
class Recovery:
    """How the runner survives failures: leases, a queue to requeue on, and the worker's stop signal.

    The defaults fit a runner used alone (unit tests): leases always granted, no requeue.
    """

    leases: object = field(default_factory=NoLeases)
    queue: JobQueue | None = None
    stopping: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    """Runs jobs by id with one loaded extractor, for the life of a worker process.

    It is the `GroupHost` of the job groups its jobs lead (worker/grouping.py).
    """

    def __init__(
        self,
        *,
        store: JobStore,
        objects: ObjectStore,
        extractor,
        settings: Settings,
        notifier: WebhookNotifier | None = None,
        recovery: Recovery | None = None,
        batches: BatchStore | None = None,
        fair_share: FairShare | None = None,
        feedforward=None,
        feedforward_missing: str = "the feed-forward model is not loaded on this worker",
        results: ResultIndex | None = None,
    ) -> None:
        self.store = store
        self.objects = objects
        self.extractor = extractor
        self.settings = settings
        self.style_cache = StyleTargetCache(objects=objects, locks=locks_over(store))
        self.uploader = SnapshotUploader(objects=objects, on_uploaded=store.add_snapshot)
        self.recovery = recovery or Recovery()
        hooks = [WebhookHook(notifier)] if notifier is not None else []  # None: it sends no webhooks
        self.manifests = None  # without a batch store no manifest is written (a runner used alone)
        if batches is not None:
            self.manifests = ManifestWriter(batches=batches, objects=objects)
            hooks.append(ManifestHook(self.manifests))
        # fair_share None: nothing held back or released here (a runner used alone)
        self.lifecycle = Lifecycle(store=store, queue=self.recovery.queue, hooks=hooks, fair_share=fair_share)
        self.checkpoints = Checkpoints(objects)
        self.batches = batches  # None: jobs are never grouped
        self.feedforward = feedforward  # worker.feedforward.FeedForward, or None where it is not installed
        self.feedforward_missing = feedforward_missing  # why it is None, for the jobs that need it
        self.results = ResultCache(index=results, objects=objects)  # index None: no result cache

    def execute(self, job_id: str) -> None:
        """The one catch-all: run a job, and turn any failure into a failed job, never a dead worker."""
        try:
            self.run_job(job_id)
        except NotFound:
            log.warning("job %s has no record (expired or deleted); skipping", job_id)
        except Exception as err:
            log.exception("job %s failed", job_id)
            self.fail(job_id, err)

    def run_job(self, job_id: str) -> None:
        """Run one job to a terminal state (or requeue it); failures propagate to `execute`."""
        record = self.store.get(job_id)
        if record.status.is_terminal:
            log.info("job %s is already %s; skipping", job_id, record.status.value)
            return
        leases = self.leases
        if not leases.acquire(job_id):
            log.info("job %s is leased by another worker (a duplicate delivery); skipping", job_id)
            return
        try:
            with Heartbeat(leases, job_id, self.lease_s) as heartbeat:
                self._run_leased(record, heartbeat)
        except LeaseLost:
            log.warning("job %s: lease lost to another worker; this one writes nothing more", job_id)
        finally:
            leases.release(job_id)

    def _run_leased(self, record: JobRecord, heartbeat: Heartbeat) -> None:
        resume = self.checkpoints.load(record.owner, record.id)
        # Before any group is formed: a cached job never leads one (its companions check for themselves).
        if resume is None and self.serve_cached(record):
            return
        started = self.start(record, heartbeat, resume=resume)
        if started is None:
            return
        with JobGroup(self, started) as group:
            outcome = group.stylize()
        self.conclude(started, outcome)

    @property
    def group_size(self) -> int:
        """The most jobs one group runs together (1 without a batch store: jobs are never grouped)."""
        return self.settings.group_jobs if self.batches is not None else 1

    @property
    def lease_s(self) -> float:
        """Seconds a job's lease lasts unless its heartbeat renews it."""
        return self.settings.lease_s

    @property
    def leases(self) -> Leases:
        """The job leases this worker takes (shared.leases.LeaseStore, or NoLeases when used alone)."""
        return self.recovery.leases

    def queued_after(self, leader: JobRecord, limit: int) -> Iterator[JobRecord]:
        """The items of the leader's batch still queued and released (not held by fair share), among the
        ``limit`` that come after it (lazily)."""
        ids = self.batches.job_ids(leader.batch_id)
        after = ids[ids.index(leader.id) + 1 :] if leader.id in ids else []
        for job_id in after[:limit]:
            try:
                record = self.store.get(job_id)
            except NotFound:
                continue
            # A held item has no message yet: taking it would let the tenant run past its fair share.
            if record.status is JobStatus.QUEUED and not self.lifecycle.is_held(record):
                yield record

    def serve_cached(self, record: JobRecord) -> bool:
        """Succeed a leased job at once with a copy of an earlier job's result, when its cache key has one
        whose object still exists: True if the job is done with (served, or canceled meanwhile)."""
        found = self.results.find(record.with_changes(cache_key=self.job_cache_key(record)))
        result_key = None if found is None else self.results.copy(record, found)
        if result_key is None:
            return False
        try:
            running = self.mark_running(record)
        except Conflict:  # its copy stays, tagged: the bucket expires it with the other job outputs
            log.info("job %s was canceled before it started; skipping", record.id)
            return True
        if not self.leases.renew(record.id):  # never write a result another worker may write too
            raise LeaseLost("the lease expired before the cached result was recorded")
        self.mark_cached(running, found, result_key)
        return True

    def has_checkpoint(self, record: JobRecord) -> bool:
        """Whether the job left a checkpoint (one HEAD request)."""
        return self.checkpoints.exists(record.owner, record.id)

    def start(
        self,
        record: JobRecord,
        heartbeat: Heartbeat,
        *,
        resume: TrainerState | None,
        options: StylizeOptions | None = None,
    ) -> Started | None:
        """Mark a leased job running and prepare its engine input; None if it was canceled meanwhile.

        ``options``: the job's, when the caller computed them already (a group choosing its companions).
        """
        try:
            record = self.mark_running(record, resume)
        except Conflict:
            log.info("job %s was canceled before it started; skipping", record.id)
            return None
        pause = PauseCheck(
            stopping=self.recovery.stopping, heartbeat=heartbeat, time_limit_s=self.settings.job_time_limit_s
        )
        sources: list[str] = []
        options = self.options(record) if options is None else options
        job, alpha = self._job_input(record, sources, pause, resume, options)
        return Started(record=record, heartbeat=heartbeat, pause=pause, sources=sources, alpha=alpha, job=job)

    def conclude(self, started: Started, outcome: Outcome) -> None:
        """Record how the engine left the job: canceled, paused (requeued or failed), or succeeded."""
        record = started.record
        if started.heartbeat.lost.is_set():
            raise LeaseLost("the job's lease was lost while it ran")
        if isinstance(outcome, Canceled):
            return self.mark_canceled(record, outcome)
        if isinstance(outcome, Paused):
            return self.mark_paused(record, outcome.state, timed_out=started.pause.timed_out)
        self.uploader.flush()
        if not self.leases.renew(record.id):  # never write a result another worker may write too
            raise LeaseLost("the lease expired before the result was stored")
        targets = "computed" if "computed" in started.sources else "reused"
        self.mark_succeeded(record, outcome, started.alpha, targets=targets)
        for source in started.sources:  # one per level
            STYLE_TARGETS.labels(source).inc()

    def fail(self, job_id: str, err: BaseException) -> None:
        """Mark a job failed by ``err``, with a reason a person can act on."""
        self.uploader.flush()  # its snapshot events come before the terminal one
        self.mark_failed(job_id, self.describe(err))

    @staticmethod
    def describe(err: BaseException) -> str:
        """A reason a person can act on, for the job record."""
        return describe_failure(err)

    def mark_running(self, record: JobRecord, resume: TrainerState | None = None) -> JobRecord:
        """queued (or redelivered running) -> running, with the weights in use and any resume point."""
        step = 0 if resume is None else _global_step(record, resume)
        log.info("job %s running (attempt %d) from step %d", record.id, record.attempt + 1, step)
        # A fresh start drops the last attempt's losses and checkpoint note (an unusable checkpoint included).
        fresh = {"losses": {}, "initial_losses": {}, "checkpoint_step": 0} if resume is None else {}
        now = time.time()
        running = self.lifecycle.start(
            record.id,
            attempt=record.attempt + 1,
            started_at=record.started_at or now,  # the first attempt's start: when the job began at all
            attempt_started_at=now,
            step=step,
            resumed_from_step=step,
            worker=self.leases.holder,
            total_steps=record.total_steps,  # the plan's: every level's steps
            weights=self.extractor.weights,
            weights_note=self.extractor.note,
            precision=self.extractor.precision,
            cache_key=self.job_cache_key(record),
            engine_version=ENGINE_VERSION,
            error="",
            **fresh,
        )
        return running

    def mark_succeeded(self, record: JobRecord, result: StylizeResult, alpha=None, targets: str = "") -> None:
        """Upload the final image (with the content's alpha, untouched), then running -> succeeded."""
        height, width = result.image.shape[:2]
        params = record.params
        data, extension, content_type = images.encode_image(
            result.image, alpha=alpha, output_format=params.output_format, quality=params.quality
        )
        key = keys.result_object_key(record.owner, record.id, extension)
        self.objects.put(key, data, content_type, tags=dict([keys.JOB_OUTPUT_TAG]))
        write_output_copy(self.objects, record, data, content_type)  # raises: no success without it
        succeeded = self._finish(
            self.lifecycle.succeed,
            record.id,
            step=result.steps_run,
            evaluations=result.evaluations,
            losses=result.final_losses,
            result_key=key,
            result_width=width,
            result_height=height,
            targets=targets,
        )
        if succeeded is None:
            return
        self.checkpoints.discard(record.owner, record.id)  # it will never resume now
        losses = (result.final_losses, result.initial_losses)
        self.results.remember(succeeded, CachedResult(record.id, key, width, height, *losses))
        log.info(
            "job %s succeeded: %dx%d, loss %.4g -> %.4g",
            record.id,
            width,
            height,
            result.initial_losses["total"],
            result.final_losses["total"],
        )

    def mark_cached(self, record: JobRecord, found: CachedResult, result_key: str) -> None:
        """running -> succeeded with ``found``'s result, copied to ``result_key``: cached, every step done."""
        copy_output(self.objects, record, result_key)  # raises: no success without the batch's output copy
        succeeded = self._finish(
            self.lifecycle.succeed,
            record.id,
            step=record.total_steps,
            evaluations=0,
            losses=found.losses,
            initial_losses=found.initial_losses,
            result_key=result_key,
            result_width=found.width,
            result_height=found.height,
            cached=True,
        )
        if succeeded is None:
            return
        # The entry now names this copy: it lives longer than the one it was copied from.
        self.results.remember(succeeded, replace(found, job_id=record.id, result_key=result_key))
        log.info("job %s succeeded from the result cache (job %s's result)", record.id, found.job_id)

    def mark_canceled(self, record: JobRecord, stop: Canceled) -> None:
        """running -> canceled at the step reached, keeping that step's image as the last snapshot."""
        self.uploader.submit(record.owner, record.id, stop.step, stop.image, wait=True)
        self.uploader.flush()
        if self._finish(self.lifecycle.cancel, record.id, f"canceled at step {stop.step}", step=stop.step):
            self.checkpoints.discard(record.owner, record.id)
            log.info("job %s canceled at step %d", record.id, stop.step)

    def mark_paused(self, record: JobRecord, state: TrainerState, *, timed_out: bool) -> None:
        """Checkpoint, then: stopping worker -> requeued (running -> queued); time limit -> failed."""
        self.uploader.flush()
        self.checkpoints.save(record.owner, record.id, state)
        step = _global_step(record, state)
        self._note_checkpoint(record, step)
        if self.recovery.stopping.is_set() and self.recovery.queue is not None:
            return self.requeue(record.id, record.batch_id, f"worker stopping; requeued at step {step}", step)
        limit = self.settings.job_time_limit_s
        reason = "the worker stopped" if not timed_out else f"the job ran past its time limit of {limit} s"
        self.mark_failed(
            record.id,
            f"{reason} at step {step} of {record.total_steps}; resubmit with fewer steps or a lower max_dim",
        )

    def requeue(self, job_id: str, batch_id: str, message: str, step: int) -> None:
        """running -> queued, and a new delivery on the job's queue: it resumes from its checkpoint."""
        self.lifecycle.requeue(job_id, message, step=step)
        log.info("job %s requeued: %s", job_id, message)

    def mark_failed(self, job_id: str, reason: str) -> None:
        """queued or running -> failed, with a reason a person can act on."""
        self._finish(self.lifecycle.fail, job_id, reason)

    @staticmethod
    def _finish(verb, job_id: str, *args, **changes) -> JobRecord | None:
        """An ending through a lifecycle verb, which never overwrites another ending (logged, None)."""
        try:
            return verb(job_id, *args, **changes)
        except (NotFound, Conflict) as err:
            log.warning("job %s not marked %s: %s", job_id, verb.__name__, err)
            return None

    def publish_progress(self, job_id: str, progress: Progress) -> None:
        """Record the step and losses the engine reported (best effort: a Redis blip never fails the job)."""
        report = Report(step=progress.step, total_steps=progress.total_steps, losses=progress.losses)
        try:
            self.lifecycle.progress(job_id, report, initial=progress.step == 0)
        except (StoreUnavailable, Conflict, NotFound) as err:
            log.warning("job %s: progress at step %d not recorded: %s", job_id, progress.step, err)

    def options(self, record: JobRecord) -> StylizeOptions:
        """A job's engine options, from its params and plan: computed once per job, then passed along."""
        return stylize_options(
            record.params,
            Plan.from_dict(record.plan),
            style_count=len(record.style_keys),
            progress_every=self.settings.progress_every,
        )

    def _job_input(
        self,
        record: JobRecord,
        sources: list[str],
        pause: PauseCheck,
        resume: TrainerState | None,
        options: StylizeOptions,
    ):
        """A job's engine input (images decoded, hooks, reports), and its alpha."""
        params = record.params
        content, alpha = images.decode_image_with_alpha(
            self.objects.get(record.content_key), max_dim=params.max_dim, **self._limits("content")
        )
        style_dim = max(16, round(params.max_dim * params.style_scale))
        styles = [self._load_style(key, style_dim) for key in record.style_keys]
        warm = self._warm_start(record, content, styles) if resume is None else None
        if alpha is not None and alpha.shape != options.levels[-1]:
            alpha = images.resize_alpha(alpha, options.levels[-1])  # tileable sides rounded to 16
        job = JobInput(
            content,
            styles,
            options,
            alpha=alpha,
            on_progress=lambda progress: self.publish_progress(record.id, progress),
            style_targets_provider=self.style_cache.provider(record.owner, self._cache_key(record), sources),
            hooks=self._hooks(record, pause),
            resume=resume,
            warm_start=warm,
        )
        return job, alpha

    def _warm_start(self, record: JobRecord, content, styles):
        """The feed-forward stylization a job asked for (its warm start, preview or whole result), or None.

        The preview is the job's first snapshot (step 0), uploaded before the optimisation starts.
        """
        params = record.params
        needed = params.init == "feedforward" or params.optimizer == "none"
        if not (needed or params.preview):
            return None
        if self.feedforward is None:  # the preview alone is a nicety: the job runs without it
            if needed:
                raise FeedForwardUnavailable(self.feedforward_missing)
            log.warning("job %s: no preview: %s", record.id, self.feedforward_missing)
            return None
        started = time.perf_counter()
        image = self.feedforward.stylize(content, styles, params.blend_weights(len(styles)))
        log.info("job %s: feed-forward image in %.2f s", record.id, time.perf_counter() - started)
        if params.preview:
            self.uploader.submit(record.owner, record.id, 0, image, wait=True)
        return image

    def _hooks(self, record: JobRecord, pause=None) -> StepHooks:
        clock = CheckpointClock(self.settings.checkpoint_every_s)

        def checkpoint(state: TrainerState) -> None:
            clock.reset()
            self._checkpoint(record, state)

        return StepHooks(
            should_stop=CancelCheck(lambda: self.store.cancel_requested(record.id)),
            snapshot_every=record.params.save_every,
            on_snapshot=lambda step, image: self.uploader.submit(record.owner, record.id, step, image),
            should_pause=pause or (lambda: False),
            checkpoint_every=self.settings.checkpoint_every,
            checkpoint_due=clock,
            on_checkpoint=checkpoint,
        )

    def _checkpoint(self, record: JobRecord, state: TrainerState) -> None:
        # Synchronous: one upload every N steps. A failed one (S3 away) is logged and the job goes on: the
        # previous checkpoint still stands, and the next one may succeed.
        try:
            self.checkpoints.save(record.owner, record.id, state)
        except StorageError as err:
            log.warning("job %s: checkpoint at step %d not stored: %s", record.id, state.step, err.message)
            return
        self._note_checkpoint(record, _global_step(record, state))

    def _note_checkpoint(self, record: JobRecord, step: int) -> None:
        try:
            self.store.record_checkpoint(record.id, step=step, total_steps=record.total_steps)
        except StoreUnavailable as err:  # the checkpoint is stored; only its note on the record is missing
            log.warning("job %s: checkpoint at step %d not noted: %s", record.id, step, err)

    def job_cache_key(self, record: JobRecord) -> str:
        """The job's result-cache key: its inputs, effective params, weights, precision and engine version."""
        return result_cache_key(
            tenant=record.owner,
            content_key=record.content_key,
            style_keys=record.style_keys,
            params_json=record.params.to_json(),
            weights_id=f"{self.extractor.weights}:{self.settings.random_weights_seed}",
            precision=self.extractor.precision,
        )

    def _cache_key(self, record: JobRecord) -> str | None:
        weights_id = (
            f"{self.extractor.weights}:{self.settings.random_weights_seed}:{self.extractor.precision}"
        )
        return cache_key(record.params, record.style_keys, weights_id)

    def _load_style(self, key: str, max_dim: int):
        return images.decode_image(self.objects.get(key), max_dim=max_dim, **self._limits("style"))

    def _limits(self, field: str) -> dict[str, object]:
        return {
            "max_pixels": self.settings.max_image_pixels,
            "min_side": self.settings.min_image_side,
            "field": field,
        }


def _global_step(record: JobRecord, state: TrainerState) -> int:
    """A level's step counted across the job's levels (each level's steps come from the job's plan)."""
    return Plan.from_dict(record.plan).offset(state.level) + state.step


def describe_failure(err: BaseException) -> str:
    """A reason a person can act on, for the job record."""
    if isinstance(err, StyleforgeError):
        return err.message
    if type(err).__name__ == "ResourceExhaustedError":
        return "out of memory while optimising; resubmit with a smaller max_dim"
    return f"internal error ({type(err).__name__}: {err}); the worker logs hold the traceback"
