"""Prometheus metrics, by Prometheus's conventions: the `styleforge_` prefix, base units (seconds, bytes),
`_total` on counters (prometheus_client adds it), and labels with a few known values only.

Job endings, queue waits and run times are counted by `MetricsHook`, a lifecycle hook every Lifecycle carries,
so each process counts the changes it makes (the API its cancels, each worker its jobs) and Prometheus sums
them. The worker adds optimiser steps and style targets; the API adds HTTP requests and, read from Redis at
scrape time, the backlog per queue and the running jobs (`StoreCollector`).
"""

import math

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from shared import keys
from shared.jobs import JobStatus
from shared.queue import queue_for

# From a second to 8 hours: a thumbnail runs in seconds, a 2048 px batch item in hours.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, math.inf)

JOBS = Counter("styleforge_jobs", "Jobs that ended, by queue and outcome.", ["queue", "outcome"])
JOB_DURATION = Histogram(
    "styleforge_job_duration_seconds",
    "Seconds from the start of a job's last attempt to its end.",
    ["queue"],
    buckets=DURATION_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "styleforge_queue_wait_seconds",
    "Seconds a job waited from submission to its first start.",
    ["queue"],
    buckets=DURATION_BUCKETS,
)
STEPS = Counter("styleforge_optimizer_steps", "Optimiser steps run (rate() gives steps/s).", ["queue"])
STYLE_TARGETS = Counter(
    "styleforge_style_targets", "Style targets per level, computed or reused from the cache.", ["source"]
)
RESULT_CACHE = Counter(
    "styleforge_result_cache",
    "Result-cache lookups of jobs that may use it: hit, miss, or expired (its object gone; computed).",
    ["outcome"],
)
HTTP_REQUESTS = Counter(
    "styleforge_http_requests",
    "HTTP requests answered, by route template, method and code.",
    ["route", "method", "code"],
)


class MetricsHook:
    """Counts endings, observes waits and durations, and counts steps from progress reports."""

    def __init__(self) -> None:
        # Jobs this process started: their queue (a progress report names no batch) and the last step counted.
        self._running: dict[str, tuple[str, int | None]] = {}

    def in_transaction(self, pipe, change) -> None:
        """Nothing: metrics live in this process, not in Redis."""

    def after(self, change) -> None:
        if change.report is not None:
            return self._steps(change.job_id, change.report.step)
        queue, record = queue_for(change.batch_id), change.record
        if change.after is JobStatus.RUNNING:
            self._running[change.job_id] = (queue, None)
            if record.attempt == 1 and record.started_at:
                QUEUE_WAIT.labels(queue).observe(max(0.0, record.started_at - record.created_at))
        if change.after.is_terminal and change.before is not None:
            JOBS.labels(queue, change.after.value).inc()
            self._running.pop(change.job_id, None)
            began = record.attempt_started_at or record.started_at
            if began and record.finished_at:
                JOB_DURATION.labels(queue).observe(max(0.0, record.finished_at - began))

    def _steps(self, job_id: str, step: int) -> None:
        if job_id not in self._running:
            return
        queue, last = self._running[job_id]
        self._running[job_id] = (queue, step)
        if last is not None and step > last:  # an attempt's first report only sets where counting starts
            STEPS.labels(queue).inc(step - last)


class StoreCollector:
    """The backlog per GPU queue and the running jobs, read from the job store at each scrape."""

    def __init__(self, store) -> None:
        self._store = store

    def collect(self):
        backlog = GaugeMetricFamily(
            "styleforge_backlog_jobs",
            "Jobs queued or running, per GPU queue (what KEDA scales on).",
            labels=["queue"],
        )
        for queue in keys.GPU_QUEUES:
            backlog.add_metric([queue], self._store.backlog_size(queue))
        running = GaugeMetricFamily("styleforge_running_jobs", "Jobs running now, on every worker.")
        running.add_metric([], self._store.running_count())
        return [backlog, running]
