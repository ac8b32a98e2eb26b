"""Job groups with fake stores and the real engine (random weights): who joins, and failures kept apart."""

import logging
import time

import numpy as np
import pytest

from shared import keys
from shared.config import Settings
from shared.jobs import JobRecord, JobStatus
from shared.params import StyleParams
from shared.plan import Plan, plan_levels
from tests.fakes import FakeJobStore, FakeLeases, FakeObjectStore
from tests.fixtures.badimages import noise_png
from worker import grouping
from worker import runner as runner_module
from worker.engine.pipeline import JobInput
from worker.grouping import Started
from worker.job_options import stylize_options
from worker.runner import JobRunner

pytestmark = pytest.mark.unit

BATCH = "batch1"


class FakeBatches:
    """The one BatchStore read a group makes: the batch's job ids in order."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def job_ids(self, batch_id: str) -> list[str]:
        return list(self.ids) if batch_id == BATCH else []


@pytest.fixture
def runner(extractor):
    settings = Settings(progress_every=2, group_jobs=3)
    return JobRunner(
        store=FakeJobStore(),
        objects=FakeObjectStore(),
        extractor=extractor,
        settings=settings,
        batches=FakeBatches(),
    )


def queue_item(runner: JobRunner, job_id: str, *, steps: int = 4, content: bytes | None = None) -> None:
    content_key, style_key = (
        keys.input_object_key("anonymous", job_id * 8, "png"),
        keys.input_object_key("anonymous", "s" * 64, "png"),
    )
    runner.objects.put(content_key, content or noise_png(40, 30, seed=len(runner.batches.ids)), "image/png")
    runner.objects.put(style_key, noise_png(32, 32, seed=2), "image/png")
    record = JobRecord(
        id=job_id,
        status=JobStatus.QUEUED,
        content_key=content_key,
        style_keys=(style_key,),
        params=StyleParams.from_mapping({"steps": steps, "max_dim": 32}),
        created_at=time.time(),
        total_steps=steps,
        batch_id=BATCH,
        plan=plan_levels(40, 30, max_dim=32, levels=1, steps=steps).to_dict(),
    )
    runner.store.create(record)
    runner.batches.ids.append(job_id)


def statuses(runner: JobRunner) -> dict[str, JobStatus]:
    return {job_id: runner.store.get(job_id).status for job_id in runner.batches.ids}


def test_the_leader_takes_queued_items_of_its_bucket_and_each_ends_succeeded(runner, caplog):
    caplog.set_level(logging.INFO, logger="styleforge.grouping")
    for job_id in ("a", "b", "c", "d"):
        queue_item(runner, job_id)
    runner.run_job("a")
    assert "job a leads a group of 3 jobs" in caplog.text
    assert statuses(runner) == {
        "a": JobStatus.SUCCEEDED,
        "b": JobStatus.SUCCEEDED,
        "c": JobStatus.SUCCEEDED,
        "d": JobStatus.QUEUED,  # the group was full
    }


def test_an_item_that_cannot_share_the_step_is_left_queued(runner):
    queue_item(runner, "a")
    queue_item(runner, "b", steps=6)  # another step count: another group key
    queue_item(runner, "c")
    runner.run_job("a")
    assert statuses(runner) == {"a": JobStatus.SUCCEEDED, "b": JobStatus.QUEUED, "c": JobStatus.SUCCEEDED}


def test_a_companion_that_cannot_start_fails_alone(runner):
    queue_item(runner, "a")
    queue_item(runner, "b", content=b"not an image at all")
    queue_item(runner, "c")
    runner.run_job("a")
    assert statuses(runner) == {"a": JobStatus.SUCCEEDED, "b": JobStatus.FAILED, "c": JobStatus.SUCCEEDED}
    assert runner.store.get("b").error


def test_when_the_group_fails_each_job_runs_again_alone(runner, monkeypatch):
    real = grouping.stylize_many

    def out_of_memory_for_a_group(extractor, jobs):
        if len(jobs) > 1:
            raise RuntimeError("simulated: out of memory for a group")
        return real(extractor, jobs)

    monkeypatch.setattr(grouping, "stylize_many", out_of_memory_for_a_group)
    for job_id in ("a", "b", "c"):
        queue_item(runner, job_id)
    runner.run_job("a")
    assert statuses(runner) == {"a": JobStatus.SUCCEEDED, "b": JobStatus.SUCCEEDED, "c": JobStatus.SUCCEEDED}


def test_a_companion_canceled_mid_group_ends_at_once_and_the_others_go_on(runner):
    for job_id in ("a", "b", "c"):
        queue_item(runner, job_id)
    ended_while_a_ran = {}
    original = runner.publish_progress

    def cancel_b_at_step_2(job_id, progress):
        original(job_id, progress)
        if job_id == "a" and progress.step == 2:
            runner.store.request_cancel("b")
        if job_id == "a" and progress.step == 4:
            ended_while_a_ran["b"] = runner.store.get("b").status

    runner.publish_progress = cancel_b_at_step_2
    runner.run_job("a")
    assert ended_while_a_ran == {"b": JobStatus.CANCELED}
    assert statuses(runner) == {"a": JobStatus.SUCCEEDED, "b": JobStatus.CANCELED, "c": JobStatus.SUCCEEDED}


def test_each_job_looked_at_has_its_options_computed_once(runner, monkeypatch):
    real, computed = runner_module.stylize_options, []

    def counting(params, plan, **kwargs):
        computed.append(params.steps)
        return real(params, plan, **kwargs)

    monkeypatch.setattr(runner_module, "stylize_options", counting)
    queue_item(runner, "a")
    queue_item(runner, "b", steps=6)  # looked at and left queued
    queue_item(runner, "c")
    runner.run_job("a")
    assert statuses(runner) == {"a": JobStatus.SUCCEEDED, "b": JobStatus.QUEUED, "c": JobStatus.SUCCEEDED}
    assert computed == [4, 6, 4]  # a as it started; b and c as the group chose, c's reused when it started


class FakeHost:
    """A GroupHost that is no runner: records what the group asks of it."""

    def __init__(self, records: list[JobRecord], *, refuses: str = "") -> None:
        self.records = records
        self.refuses = refuses  # the id of a job whose start raises
        self.extractor = "vgg"
        self.leases = FakeLeases()
        self.group_size, self.lease_s = 3, 30.0
        self.calls: list[tuple[str, str]] = []

    def options(self, record: JobRecord):
        self.calls.append(("options", record.id))
        plan = Plan.from_dict(record.plan)
        return stylize_options(record.params, plan, style_count=1, progress_every=2)

    def queued_after(self, leader: JobRecord, limit: int):
        return iter(self.records[self.records.index(leader) + 1 :][:limit])

    def has_checkpoint(self, job_id: str) -> bool:
        return False

    def serve_cached(self, record: JobRecord) -> bool:
        return False

    def start(self, record: JobRecord, heartbeat, *, resume, options) -> Started:
        self.calls.append(("start", record.id))
        if record.id == self.refuses:
            raise ValueError("not an image")
        job = JobInput(np.zeros((2, 2, 3), np.float32), [np.zeros((2, 2, 3), np.float32)], options)
        return Started(record=record, heartbeat=heartbeat, pause=None, sources=[], alpha=None, job=job)

    def conclude(self, started: Started, outcome) -> None:
        self.calls.append(("conclude", started.record.id))

    def fail(self, job_id: str, err: BaseException) -> None:
        self.calls.append(("fail", job_id))


def host_records(*steps: int) -> list[JobRecord]:
    return [
        JobRecord(
            id=f"j{index}",
            status=JobStatus.QUEUED,
            content_key="c",
            style_keys=("s",),
            params=StyleParams.from_mapping({"steps": count, "max_dim": 32}),
            created_at=0.0,
            batch_id=BATCH,
            plan=plan_levels(40, 30, max_dim=32, levels=1, steps=count).to_dict(),
        )
        for index, count in enumerate(steps)
    ]


def test_a_group_needs_only_its_host_protocol_and_starts_companions_with_the_options_it_computed(monkeypatch):
    def run_each(extractor, jobs):
        for job in jobs[1:]:
            job.on_outcome("done")
        return ["done" for _ in jobs]

    monkeypatch.setattr(grouping, "stylize_many", run_each)
    records = host_records(4, 6, 4, 4)
    host = FakeHost(records, refuses="j2")
    leader = host.start(records[0], heartbeat=None, resume=None, options=host.options(records[0]))
    with grouping.JobGroup(host, leader) as group:
        assert group.stylize() == "done"
    assert host.calls[2:] == [
        ("options", "j1"),  # another step count: left alone
        ("options", "j2"),
        ("start", "j2"),
        ("fail", "j2"),  # it could not start: it fails alone
        ("options", "j3"),
        ("start", "j3"),
        ("conclude", "j3"),
    ]
    assert host.leases.released == ["j3", "j2"]
