"""WebhookNotifier: a job's lifecycle as deliveries on the `webhooks` queue, so a GPU never waits on HTTP.

The worker's runner calls it after each transition, with the record the transition returned (the API too, when
it cancels a queued job):
`started(record)` after mark_running, `progress(record_or_id, step=, total_steps=, losses=)` from
publish_progress, `completed(record)` after the job ends succeeded, failed or canceled. Nothing here raises:
a webhook that cannot be queued is logged, and the job goes on.
"""

import logging
import time
from collections.abc import Callable, Mapping

from shared import keys
from shared.jobs import JobRecord
from shared.webhooks import DELIVER_TASK, WebhookMessage, job_snapshot

log = logging.getLogger("styleforge.notify")

# Seconds between two progress webhooks of one job: receivers want a pulse, not one POST per engine report.
PROGRESS_INTERVAL_S = 1.0


class WebhookNotifier:
    """Queues a delivery for each event a job's webhook subscribed to; progress is throttled per job."""

    def __init__(
        self,
        *,
        celery,
        min_progress_interval_s: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._celery = celery
        self._interval = min_progress_interval_s
        self._clock = clock
        self._running: dict[str, JobRecord] = {}  # jobs started in this process, for progress by id
        self._last_progress: dict[str, float] = {}

    def started(self, record: JobRecord) -> None:
        """The job is running (after mark_running): send `job.started`, and remember it for progress by id."""
        if not record.webhook:
            return
        self._running[record.id] = record
        self._last_progress.pop(record.id, None)
        self._send(record, "start")

    def progress(
        self, job: JobRecord | str, *, step: int, total_steps: int, losses: Mapping[str, float]
    ) -> None:
        """A progress report: send `job.progress` unless one went out for this job less than the interval ago.

        Args:
            job: the running JobRecord, or its id when `started` was called with it in this process.
        """
        record = self._running.get(job) if isinstance(job, str) else job
        if record is None or not self._subscribed(record, "progress"):
            return
        now = self._clock()
        last = self._last_progress.get(record.id)
        if last is not None and now - last < self._interval:
            return
        self._last_progress[record.id] = now
        self._send(record.with_changes(step=step, total_steps=total_steps, losses=dict(losses)), "progress")

    def completed(self, record: JobRecord) -> None:
        """The job ended (succeeded, failed or canceled): send `job.completed` and forget it."""
        self._running.pop(record.id, None)
        self._last_progress.pop(record.id, None)
        self._send(record, "completed")

    @staticmethod
    def _subscribed(record: JobRecord, kind: str) -> bool:
        return bool(record.webhook) and kind in record.webhook_events

    def _send(self, record: JobRecord, kind: str) -> None:
        if not self._subscribed(record, kind):
            return
        message = WebhookMessage.build(record.webhook, kind, job_snapshot(record))
        try:
            self._celery.send_task(DELIVER_TASK, args=message.to_args(), queue=keys.WEBHOOKS_QUEUE)
        except Exception as err:  # the broker being away must not fail the job
            log.warning(
                "job %s: could not queue its %s webhook (%s: %s)", record.id, kind, type(err).__name__, err
            )
