"""MetricsHook counts what the lifecycle does: endings by queue and outcome, the first start's queue wait,
run durations, and optimiser steps from progress reports (each attempt's first report only sets the base)."""

import time

import pytest
from prometheus_client import REGISTRY

from shared.errors import Conflict
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import Lifecycle, Report
from shared.params import StyleParams
from tests.fakes import FakeJobStore, RecordingQueue

pytestmark = pytest.mark.unit


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def queued(job_id: str, batch_id: str = "") -> JobRecord:
    return JobRecord(
        id=job_id,
        status=JobStatus.QUEUED,
        params=StyleParams.from_mapping({}),
        content_key="c",
        style_keys=("s",),
        created_at=time.time() - 5,
        batch_id=batch_id,
    )


def test_a_job_run_to_its_end_counts_its_wait_steps_ending_and_duration():
    before = {
        "ended": sample("styleforge_jobs_total", queue="bulk", outcome="succeeded"),
        "waits": sample("styleforge_queue_wait_seconds_count", queue="bulk"),
        "steps": sample("styleforge_optimizer_steps_total", queue="bulk"),
        "runs": sample("styleforge_job_duration_seconds_count", queue="bulk"),
    }
    lifecycle = Lifecycle(store=FakeJobStore(), queue=RecordingQueue())
    lifecycle.queue(queued("m1", batch_id="b1"))
    lifecycle.start("m1", attempt=1, started_at=time.time())
    for step in (0, 10, 20):
        lifecycle.progress("m1", Report(step=step, total_steps=20))
    lifecycle.requeue("m1", "worker stopping")
    lifecycle.start("m1", attempt=2, started_at=time.time())  # a second attempt: no second wait
    for step in (15, 20):  # resumed at 15: 5 more steps, not 15 again
        lifecycle.progress("m1", Report(step=step, total_steps=20))
    lifecycle.succeed("m1")
    assert sample("styleforge_jobs_total", queue="bulk", outcome="succeeded") == before["ended"] + 1
    assert sample("styleforge_queue_wait_seconds_count", queue="bulk") == before["waits"] + 1
    assert sample("styleforge_optimizer_steps_total", queue="bulk") == before["steps"] + 20 + 5
    assert sample("styleforge_job_duration_seconds_count", queue="bulk") == before["runs"] + 1


def test_a_canceled_queued_job_counts_as_canceled_and_a_refused_change_counts_nothing():
    lifecycle = Lifecycle(store=FakeJobStore(), queue=RecordingQueue())
    canceled = sample("styleforge_jobs_total", queue="interactive", outcome="canceled")
    lifecycle.queue(queued("m2"))
    lifecycle.cancel("m2", "canceled before it started")
    with pytest.raises(Conflict):
        lifecycle.cancel("m2", "again")
    assert sample("styleforge_jobs_total", queue="interactive", outcome="canceled") == canceled + 1
