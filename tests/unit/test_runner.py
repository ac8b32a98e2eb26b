"""The runner drives a job through its lifecycle with fake stores and the real engine (random weights)."""

import time

import pytest

from shared import images, keys
from shared.config import Settings
from shared.errors import StorageError
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import Lifecycle, WebhookHook
from shared.params import StyleParams
from shared.plan import plan_levels
from tests.fakes import FakeJobStore, FakeObjectStore
from tests.fixtures.badimages import noise_png
from worker.runner import JobRunner, describe_failure

pytestmark = pytest.mark.unit


@pytest.fixture
def runner(extractor):
    settings = Settings(progress_every=2)
    return JobRunner(store=FakeJobStore(), objects=FakeObjectStore(), extractor=extractor, settings=settings)


def queue_job(
    runner: JobRunner, *, steps: int = 4, with_inputs: bool = True, owner: str = "anonymous"
) -> JobRecord:
    content, style = (
        keys.input_object_key(owner, "c" * 64, "png"),
        keys.input_object_key(owner, "s" * 64, "png"),
    )
    if with_inputs:
        runner.objects.put(content, noise_png(40, 30, seed=1), "image/png")
        runner.objects.put(style, noise_png(32, 32, seed=2), "image/png")
    record = JobRecord(
        id="job1",
        status=JobStatus.QUEUED,
        content_key=content,
        style_keys=(style,),
        params=StyleParams.from_mapping({"steps": steps, "max_dim": 32}),
        created_at=time.time(),
        total_steps=steps,
        plan=plan_levels(40, 30, max_dim=32, levels=1, steps=steps).to_dict(),
        owner=owner,
    )
    runner.store.create(record)
    return record


def test_the_worker_writes_job_outputs_under_the_owner_tagged_to_expire_and_inputs_untagged(runner):
    record = queue_job(runner, steps=4, owner="acme")
    runner.objects.put(keys.input_object_key("globex", "c" * 64, "png"), b"not read", "image/png")
    runner.run_job("job1")
    assert runner.store.get("job1").result_key == keys.result_object_key("acme", "job1")
    written = {key: tags for key, tags in runner.objects.tags.items() if "/jobs/" in key}
    assert written and all(key.startswith("tenants/acme/jobs/job1/") for key in written)
    assert all(tags == dict([keys.JOB_OUTPUT_TAG]) for tags in written.values())
    assert not any(runner.objects.tags[key] for key in (record.content_key, *record.style_keys))


def test_a_job_runs_to_succeeded_with_progress_and_a_stored_png(runner):
    queue_job(runner, steps=4)
    runner.run_job("job1")
    record = runner.store.get("job1")
    assert record.status is JobStatus.SUCCEEDED
    assert (record.step, record.attempt, record.weights) == (4, 1, "random")
    assert [e[1:] for e in runner.store.events] == [
        ("running", 0),
        ("progress", 0),
        ("progress", 2),
        ("progress", 4),
        ("succeeded", 4),
    ]
    png = runner.objects.get(record.result_key)
    assert images.inspect_image(png, field="result", max_pixels=10**6, min_side=1).width == 32
    assert (record.result_width, record.result_height) == (32, 24)


def test_a_terminal_job_delivered_again_is_skipped(runner):
    queue_job(runner)
    runner.lifecycle.cancel("job1", "canceled by the test")
    runner.run_job("job1")
    assert runner.store.get("job1").status is JobStatus.CANCELED
    assert runner.objects.exists(keys.result_object_key("anonymous", "job1")) is False


def test_a_missing_input_raises_a_storage_error_naming_the_object(runner):
    record = queue_job(runner, with_inputs=False)
    with pytest.raises(StorageError, match=record.content_key):
        runner.run_job("job1")


def test_execute_marks_a_failing_job_failed_with_the_reason_and_returns(runner):
    record = queue_job(runner, with_inputs=False)
    runner.execute("job1")
    failed = runner.store.get("job1")
    assert failed.status is JobStatus.FAILED
    assert record.content_key in failed.error
    assert failed.attempt == 1


def test_execute_skips_a_job_whose_record_is_gone(runner):
    runner.execute("never-existed")
    assert runner.store.events == []


def test_failure_reasons_are_readable():
    assert describe_failure(ValueError("boom")).startswith("internal error (ValueError: boom)")
    out_of_memory = type("ResourceExhaustedError", (Exception,), {})("OOM when allocating")
    assert "smaller max_dim" in describe_failure(out_of_memory)


class RecordingNotifier:
    """Stands in for the WebhookNotifier: records what the runner tells it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def started(self, record: JobRecord) -> None:
        self.calls.append(("started", record.status.value, record.step))

    def progress(self, job_id: str, *, step: int, total_steps: int, losses: dict) -> None:
        self.calls.append(("progress", job_id, step))

    def completed(self, record: JobRecord) -> None:
        self.calls.append(("completed", record.status.value, record.step))


def with_notifier(runner: JobRunner) -> RecordingNotifier:
    """Give the runner's lifecycle a webhook hook over a recording notifier."""
    notifier = RecordingNotifier()
    runner.lifecycle = Lifecycle(store=runner.store, hooks=[WebhookHook(notifier)])
    return notifier


def test_the_notifier_hears_started_each_progress_report_and_completed(runner):
    notifier = with_notifier(runner)
    queue_job(runner, steps=4)
    runner.run_job("job1")
    assert notifier.calls == [
        ("started", "running", 0),
        ("progress", "job1", 0),
        ("progress", "job1", 2),
        ("progress", "job1", 4),
        ("completed", "succeeded", 4),
    ]


def test_the_notifier_hears_completed_when_a_job_fails(runner):
    notifier = with_notifier(runner)
    queue_job(runner, with_inputs=False)
    runner.execute("job1")
    assert notifier.calls == [("started", "running", 0), ("completed", "failed", 0)]


def test_without_the_feed_forward_model_a_default_job_runs_without_its_preview(runner, caplog):
    record = queue_job(runner, steps=2)
    assert record.params.preview and runner.feedforward is None
    runner.run_job("job1")
    assert runner.store.get("job1").status is JobStatus.SUCCEEDED
    assert runner.store.snapshots("job1") == []
    assert "no preview" in caplog.text


def test_without_the_feed_forward_model_a_warm_started_job_fails_saying_what_to_install(extractor):
    missing = "onnxruntime is not installed: pip install 'styleforge[worker]'"
    runner = JobRunner(
        store=FakeJobStore(),
        objects=FakeObjectStore(),
        extractor=extractor,
        settings=Settings(),
        feedforward_missing=missing,
    )
    record = queue_job(runner, steps=2)
    runner.store.records["job1"] = record.with_changes(
        params=StyleParams.from_mapping({"steps": 2, "max_dim": 32, "init": "feedforward"})
    )
    runner.execute("job1")
    failed = runner.store.get("job1")
    assert (failed.status, failed.error) == (JobStatus.FAILED, missing)
