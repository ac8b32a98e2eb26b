"""Job groups with fake stores and the real engine (random weights): who joins, and failures kept apart."""

import logging
import time

import pytest

from shared import keys
from shared.config import Settings
from shared.jobs import JobRecord, JobStatus
from shared.params import StyleParams
from shared.plan import plan_levels
from tests.fakes import FakeJobStore, FakeObjectStore
from tests.fixtures.badimages import noise_png
from worker import grouping
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
    content_key, style_key = keys.input_object_key(job_id * 8, "png"), keys.input_object_key("s" * 64, "png")
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
