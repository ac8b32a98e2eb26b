"""Checkpoints, resume, pause on shutdown and time limit, leases: the engine and runner with fakes."""

import threading
import time

import numpy as np
import pytest

from shared import keys
from shared.config import Settings
from shared.errors import StorageError, StoreUnavailable
from shared.jobs import JobRecord, JobStatus
from shared.params import StyleParams
from shared.plan import plan_levels
from tests.fakes import FakeJobStore, FakeLeases, FakeObjectStore, RecordingQueue
from tests.fixtures.badimages import noise_png
from tests.unit.test_runner import queue_job
from worker.engine.checkpoint import Paused, TrainerState
from worker.engine.losses import LossConfig
from worker.engine.optimize import AdamConfig, StepHooks, Targets, content_targets, optimize, style_targets
from worker.recovery import CancelCheck, CheckpointClock, Checkpoints, Heartbeat
from worker.runner import JobRunner, Recovery

pytestmark = pytest.mark.unit


def run(extractor, *, steps: int, hooks=None, resume=None):
    rng = np.random.default_rng(0)
    content, style = rng.random((32, 32, 3), dtype=np.float32), rng.random((32, 32, 3), dtype=np.float32)
    targets = Targets(
        style=style_targets(extractor, [style], [1.0]), content=content_targets(extractor, content)
    )
    config = LossConfig.for_formula("balanced", style_weight=1, content_weight=0.05, tv_weight=0)
    init = content if resume is None else resume.image
    return optimize(
        extractor,
        targets,
        init,
        steps=steps,
        loss_config=config,
        adam=AdamConfig(epsilon=1e-8),
        hooks=hooks,
        resume=resume,
    )


def test_a_paused_run_resumed_from_its_checkpoint_ends_exactly_where_an_uninterrupted_one_does(extractor):
    straight = run(extractor, steps=8)
    asked = iter([False] * 5 + [True])
    with pytest.raises(Paused) as paused:
        run(extractor, steps=8, hooks=StepHooks(should_pause=lambda: next(asked)))
    state = TrainerState.from_npz(paused.value.state.to_npz())  # through the bytes a bucket would hold
    assert (state.level, state.step) == (0, 5)
    resumed = run(extractor, steps=8, resume=state)
    assert resumed.steps_run == 8
    np.testing.assert_allclose(resumed.image, straight.image, atol=1e-6)


def test_checkpoints_come_every_n_steps_but_not_at_the_end(extractor):
    saved = []
    run(
        extractor,
        steps=7,
        hooks=StepHooks(checkpoint_every=3, on_checkpoint=lambda state: saved.append(state)),
    )
    assert [state.step for state in saved] == [3, 6]
    assert all(len(state.slots) >= 3 for state in saved)  # iteration count and both moments at least


def test_bytes_that_are_not_a_checkpoint_are_refused():
    with pytest.raises(ValueError, match="not a styleforge checkpoint"):
        TrainerState.from_npz(b"PK\x03\x04 not really")


class StoppingStore(FakeJobStore):
    """A job store that raises the worker's stop flag once the job reports a given step."""

    def __init__(self, stopping: threading.Event, at_step: int) -> None:
        super().__init__()
        self._stopping, self._at = stopping, at_step

    def record_progress(self, job_id: str, *, step: int, **kwargs) -> None:
        super().record_progress(job_id, step=step, **kwargs)
        if step >= self._at:
            self._stopping.set()


def make_runner(extractor, store, *, leases=None, settings=None, stopping=None):
    recovery = Recovery(
        leases=leases or FakeLeases(), queue=RecordingQueue(), stopping=stopping or threading.Event()
    )
    settings = settings or Settings(progress_every=2, checkpoint_every=4, lease_s=1)
    return JobRunner(
        store=store, objects=FakeObjectStore(), extractor=extractor, settings=settings, recovery=recovery
    )


def test_a_stopping_worker_checkpoints_and_requeues_and_the_next_run_resumes_there(extractor):
    stopping = threading.Event()
    runner = make_runner(extractor, StoppingStore(stopping, at_step=6), stopping=stopping)
    queue_job(runner, steps=10)
    runner.run_job("job1")
    paused = runner.store.get("job1")
    assert (paused.status, paused.checkpoint_step, paused.step) == (JobStatus.QUEUED, 6, 6)
    assert runner.recovery.queue.enqueued == [("job1", keys.INTERACTIVE_QUEUE)]
    assert runner.objects.exists(keys.checkpoint_object_key("anonymous", "job1"))

    stopping.clear()
    runner.store._at = 10**6
    runner.run_job("job1")
    done = runner.store.get("job1")
    assert (done.status, done.attempt, done.resumed_from_step, done.step) == (JobStatus.SUCCEEDED, 2, 6, 10)
    assert runner.recovery.leases.released == ["job1", "job1"]


def test_a_job_past_its_time_limit_fails_with_the_reason_and_keeps_its_checkpoint(extractor):
    settings = Settings(progress_every=2, checkpoint_every=4, lease_s=1, job_time_limit_s=1)
    runner = make_runner(extractor, FakeJobStore(), settings=settings)
    queue_job(runner, steps=20_000)
    runner.execute("job1")
    failed = runner.store.get("job1")
    assert failed.status is JobStatus.FAILED
    assert "time limit of 1 s" in failed.error and "fewer steps" in failed.error
    assert runner.objects.exists(keys.checkpoint_object_key("anonymous", "job1"))
    assert runner.recovery.queue.enqueued == []


def test_a_duplicate_delivery_of_a_leased_job_does_not_run_it(extractor):
    runner = make_runner(extractor, FakeJobStore(), leases=FakeLeases(taken=("job1",)))
    queue_job(runner, steps=4)
    runner.execute("job1")
    assert runner.store.get("job1").status is JobStatus.QUEUED
    assert runner.store.events == []


def test_a_worker_that_loses_its_lease_stops_and_writes_no_result(extractor):
    leases = FakeLeases()
    runner = make_runner(extractor, FakeJobStore(), leases=leases)
    queue_job(runner, steps=20_000)
    threading.Timer(0.5, lambda: setattr(leases, "lose", True)).start()
    runner.execute("job1")
    record = runner.store.get("job1")
    assert record.status is JobStatus.RUNNING  # left for the reaper and the worker that owns it now
    assert not runner.objects.exists(keys.result_object_key("anonymous", "job1"))


class BrokenResultStore(FakeObjectStore):
    """An object store whose final-result uploads fail (after the client's retries): a long S3 outage."""

    def put(self, key: str, data: bytes, content_type: str, *, tags=None) -> None:
        if key.endswith("/result.png"):
            raise StorageError(
                f"object store failed to upload {key}: EndpointConnectionError (after 5 attempts)"
            )
        super().put(key, data, content_type, tags=tags)


def test_a_final_upload_that_fails_marks_the_job_failed_with_the_storage_reason_and_does_not_requeue(
    extractor,
):
    runner = make_runner(extractor, FakeJobStore())
    runner.objects = BrokenResultStore()
    runner.checkpoints = Checkpoints(runner.objects)
    queue_job(runner, steps=4)
    runner.execute("job1")
    failed = runner.store.get("job1")
    assert failed.status is JobStatus.FAILED
    assert (
        "failed to upload tenants/anonymous/jobs/job1/result.png" in failed.error
        and "EndpointConnectionError" in failed.error
    )
    assert runner.recovery.queue.enqueued == []


def queue_default_job(runner: JobRunner, *, steps: int) -> None:
    """A job with no preset (so `quality`: L-BFGS over two levels), planned as the API plans it."""
    content, style = (
        keys.input_object_key("anonymous", "c" * 64, "png"),
        keys.input_object_key("anonymous", "s" * 64, "png"),
    )
    runner.objects.put(content, noise_png(128, 96, seed=1), "image/png")
    runner.objects.put(style, noise_png(48, 48, seed=2), "image/png")
    params = StyleParams.from_mapping({"steps": steps, "max_dim": 96})
    plan = plan_levels(
        128,
        96,
        max_dim=96,
        levels=params.levels,
        steps=steps,
        coarse_step_factor=params.coarse_step_factor,
        history=params.lbfgs_history,
    )
    record = JobRecord(
        id="job1",
        status=JobStatus.QUEUED,
        content_key=content,
        style_keys=(style,),
        params=params,
        created_at=time.time(),
        total_steps=plan.total_steps,
        plan=plan.to_dict(),
    )
    runner.store.create(record)


def test_a_default_lbfgs_job_stopped_in_its_second_level_resumes_and_ends_as_an_uninterrupted_one(extractor):
    straight = make_runner(extractor, FakeJobStore())
    queue_default_job(straight, steps=4)
    straight.run_job("job1")
    assert straight.store.get("job1").params.optimizer == "lbfgs"
    assert [level["steps"] for level in straight.store.get("job1").plan["levels"]] == [12, 4]

    stopping = threading.Event()
    runner = make_runner(extractor, StoppingStore(stopping, at_step=14), stopping=stopping)
    queue_default_job(runner, steps=4)
    runner.run_job("job1")
    paused = runner.store.get("job1")
    assert (paused.status, paused.checkpoint_step) == (JobStatus.QUEUED, 14)
    stopping.clear()
    runner.store._at = 10**6
    runner.run_job("job1")
    done = runner.store.get("job1")
    assert (done.status, done.resumed_from_step, done.step) == (JobStatus.SUCCEEDED, 14, 16)
    # The same float operations in the same order, from the checkpointed history and image: the same bytes.
    assert runner.objects.get(keys.result_object_key("anonymous", "job1")) == straight.objects.get(
        keys.result_object_key("anonymous", "job1")
    )


class FlakyLeases(FakeLeases):
    """Leases whose store is away for the first ``outages`` renewals."""

    def __init__(self, outages: int) -> None:
        super().__init__()
        self.outages = outages
        self.renewals = 0

    def renew(self, job_id: str) -> bool:
        self.renewals += 1
        if self.renewals <= self.outages:
            raise StoreUnavailable("the job store (Redis) failed (ConnectionError: refused); retry shortly")
        return super().renew(job_id)


def test_a_heartbeat_keeps_renewing_through_a_store_outage_and_keeps_the_lease():
    leases = FlakyLeases(outages=2)
    leases.acquire("job1")
    with Heartbeat(leases, "job1", lease_s=0.15) as heartbeat:
        deadline = time.monotonic() + 5
        while leases.renewals < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert leases.renewals >= 4 and not heartbeat.lost.is_set()


def test_a_cancel_check_during_a_store_outage_says_go_on():
    def refused() -> bool:
        raise StoreUnavailable("the job store (Redis) failed (TimeoutError: timed out); retry shortly")

    assert CancelCheck(refused)() is False


def test_progress_and_checkpoint_notes_lost_to_a_store_outage_do_not_fail_the_job(extractor):
    refused = []

    class DownForNotes(FakeJobStore):
        def record_progress(self, job_id: str, **_: object) -> None:
            refused.append(job_id)
            raise StoreUnavailable("the job store (Redis) failed (ConnectionError: refused); retry shortly")

        record_checkpoint = record_progress

    store = DownForNotes()
    runner = JobRunner(
        store=store,
        objects=FakeObjectStore(),
        extractor=extractor,
        settings=Settings(checkpoint_every=2, progress_every=1),
    )
    job_id = queue_job(runner, steps=4).id
    runner.run_job(job_id)
    assert store.get(job_id).status is JobStatus.SUCCEEDED
    assert len(refused) >= 5  # progress at steps 0-4 and the checkpoint at step 2 were all refused


def test_the_checkpoint_clock_is_due_after_its_seconds_and_counts_again_from_each_reset():
    now = [100.0]
    clock = CheckpointClock(30.0, clock=lambda: now[0])
    now[0] = 129.9
    assert not clock()
    now[0] = 130.0
    assert clock()
    clock.reset()
    assert not clock()
    assert not CheckpointClock(0.0, clock=lambda: now[0] + 10**6)()  # 0: by steps only


def test_a_job_checkpoints_by_time_when_its_step_interval_is_never_reached(extractor):
    # Far more steps between checkpoints than the job runs, so any checkpoint it takes was due by time.
    settings = Settings(progress_every=2, checkpoint_every=10**6, checkpoint_every_s=0.05, lease_s=1)
    stopping = threading.Event()
    runner = make_runner(extractor, StoppingStore(stopping, at_step=30), settings=settings, stopping=stopping)
    queue_job(runner, steps=40)
    runner.run_job("job1")
    paused = runner.store.get("job1")
    timed = [step for job_id, kind, step in runner.store.events if kind == "checkpoint" and step < 30]
    assert timed, "no checkpoint was taken by time before the pause"
    assert paused.status is JobStatus.QUEUED and paused.checkpoint_step >= 30  # the pause's own checkpoint


def test_a_resumed_job_keeps_its_first_start_records_its_attempts_start_and_drops_its_checkpoint_at_the_end(
    extractor,
):
    stopping = threading.Event()
    runner = make_runner(extractor, StoppingStore(stopping, at_step=6), stopping=stopping)
    queue_job(runner, steps=10)
    runner.run_job("job1")
    first = runner.store.get("job1")
    assert first.started_at == first.attempt_started_at and runner.checkpoints.exists("anonymous", "job1")
    stopping.clear()
    runner.store._at = 10**6
    runner.run_job("job1")
    done = runner.store.get("job1")
    assert done.status is JobStatus.SUCCEEDED and done.attempt == 2
    assert done.started_at == first.started_at and done.attempt_started_at > first.started_at
    assert not runner.checkpoints.exists("anonymous", "job1")  # it will never resume now
