"""Job lifecycle: fetch inputs, run the engine, report progress, store the result, record the outcome.

Every transition is one method (`mark_running`, `mark_succeeded`, `mark_failed`), written to the job hash
and its event stream together by the JobStore.
"""

import logging
import time

from shared import images, keys
from shared.config import Settings
from shared.errors import NotFound, StyleforgeError
from shared.jobs import JobRecord, JobStatus, StyleParams
from shared.storage import ObjectStore
from shared.store import JobStore
from worker.engine.losses import LossConfig
from worker.engine.optimize import AdamConfig, Progress, StylizeResult, stylize

log = logging.getLogger("styleforge.runner")


class JobRunner:
    """Runs jobs by id with one loaded extractor, for the life of a worker process."""

    def __init__(self, *, store: JobStore, objects: ObjectStore, extractor, settings: Settings) -> None:
        self.store = store
        self.objects = objects
        self.extractor = extractor
        self.settings = settings

    def execute(self, job_id: str) -> None:
        """The one catch-all: run a job, and turn any failure into a failed job, never a dead worker."""
        try:
            self.run_job(job_id)
        except NotFound:
            log.warning("job %s has no record (expired or deleted); skipping", job_id)
        except Exception as err:
            log.exception("job %s failed", job_id)
            self.mark_failed(job_id, describe_failure(err))

    def run_job(self, job_id: str) -> None:
        """Run one job to a terminal state; failures propagate to `execute`."""
        record = self.store.get(job_id)
        if record.status.is_terminal:
            log.info("job %s is already %s; skipping", job_id, record.status.value)
            return
        record = self.mark_running(record)
        result = self._stylize(record)
        self.mark_succeeded(record, result)

    def mark_running(self, record: JobRecord) -> JobRecord:
        """queued (or redelivered running) -> running, with the weights in use recorded."""
        log.info("job %s running (attempt %d)", record.id, record.attempt + 1)
        return self.store.transition(
            record.id,
            JobStatus.RUNNING,
            attempt=record.attempt + 1,
            started_at=time.time(),
            step=0,
            total_steps=record.params.steps,
            weights=self.extractor.weights,
            weights_note=self.extractor.note,
            losses={},  # a redelivered job starts afresh: drop what the dead attempt left
            initial_losses={},
            error="",
        )

    def mark_succeeded(self, record: JobRecord, result: StylizeResult) -> None:
        """Upload the final PNG, then running -> succeeded."""
        height, width = result.image.shape[:2]
        key = keys.result_object_key(record.id, "png")
        self.objects.put(key, images.encode_png(result.image), "image/png")
        self.store.transition(
            record.id,
            JobStatus.SUCCEEDED,
            finished_at=time.time(),
            step=result.steps_run,
            losses=result.final_losses,
            result_key=key,
            result_width=width,
            result_height=height,
        )
        log.info(
            "job %s succeeded: %dx%d, loss %.4g -> %.4g",
            record.id,
            width,
            height,
            result.initial_losses["total"],
            result.final_losses["total"],
        )

    def mark_failed(self, job_id: str, reason: str) -> None:
        """Any state -> failed, with a reason a person can act on."""
        try:
            self.store.transition(
                job_id, JobStatus.FAILED, finished_at=time.time(), error=reason, message=reason
            )
        except NotFound:
            log.warning("job %s vanished before it could be marked failed: %s", job_id, reason)

    def publish_progress(self, job_id: str, progress: Progress) -> None:
        """Record the step and losses the engine reported."""
        self.store.record_progress(
            job_id,
            step=progress.step,
            total_steps=progress.total_steps,
            losses=progress.losses,
            initial=progress.step == 0,
        )

    def _stylize(self, record: JobRecord) -> StylizeResult:
        params = record.params
        content = self._load_image(record.content_key, params.max_dim, "content")
        style = self._load_image(record.style_key, params.max_dim, "style")
        return stylize(
            self.extractor,
            content,
            style,
            steps=params.steps,
            loss_config=loss_config(params),
            adam=adam_config(params),
            progress_every=self.settings.progress_every,
            on_progress=lambda progress: self.publish_progress(record.id, progress),
        )

    def _load_image(self, key: str, max_dim: int, field: str):
        return images.decode_image(
            self.objects.get(key),
            max_dim=max_dim,
            max_pixels=self.settings.max_image_pixels,
            min_side=self.settings.min_image_side,
            field=field,
        )


def loss_config(params: StyleParams) -> LossConfig:
    """The engine's loss settings for a job: the preset picks the formulas, params the weights."""
    return LossConfig.for_formula(
        params.preset,
        style_weight=params.style_weight,
        content_weight=params.content_weight,
        tv_weight=params.tv_weight,
    )


def adam_config(params: StyleParams) -> AdamConfig:
    """The engine's optimiser settings for a job."""
    return AdamConfig(
        learning_rate=params.learning_rate, beta_1=params.beta_1, beta_2=params.beta_2, epsilon=params.epsilon
    )


def describe_failure(err: BaseException) -> str:
    """A reason a person can act on, for the job record."""
    if isinstance(err, StyleforgeError):
        return err.message
    if type(err).__name__ == "ResourceExhaustedError":
        return "out of memory while optimising; resubmit with a smaller max_dim"
    return f"internal error ({type(err).__name__}: {err}); the worker logs hold the traceback"
