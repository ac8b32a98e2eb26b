"""The exact backlog per GPU queue (shared.backlog) equals the truth, the jobs queued or running there, after
every path: submit, start, progress, succeed, fail, cancel, requeue on SIGTERM, the reaper after a kill -9, an
expired record, and a real stack running single jobs and a batch to their ends. A real kill -9 and a real
SIGTERM of a worker mid-job, sampled throughout, are in test_two_workers.py."""

import threading
import time

import pytest
import requests

from shared import keys
from shared.batch_store import BatchStore
from shared.batches import BatchRecord
from shared.jobs import JobRecord, JobStatus
from shared.leases import LeaseStore
from shared.lifecycle import Lifecycle, Report
from shared.params import StyleParams
from shared.store import JobStore, build_job_store
from tests.fakes import RecordingQueue
from tests.integration.helpers import (
    empty_job_store,
    example,
    png_bytes,
    sets_and_truth,
    submit,
    wait_for_terminal,
)
from worker.reaper import Reaper

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_server):
    yield from empty_job_store(redis_server, 9)


def assert_exact(store: JobStore, job_ids) -> None:
    held, live = sets_and_truth(store, job_ids)
    assert held == live


def record(job_id: str, batch_id: str = "", status: JobStatus = JobStatus.QUEUED) -> JobRecord:
    params = StyleParams.from_mapping({"steps": 3, "max_dim": 32})
    return JobRecord(
        id=job_id,
        status=status,
        params=params,
        content_key="c",
        style_keys=("s",),
        created_at=time.time(),
        batch_id=batch_id,
    )


def test_every_verb_keeps_the_backlog_exact(store):
    lifecycle = Lifecycle(store=store, queue=RecordingQueue())
    ids = ["single", "b-ok", "b-bad", "b-more"]

    def check() -> None:
        assert_exact(store, ids)

    lifecycle.queue(record("single"))
    batch = BatchRecord(
        id="b1", params=StyleParams.from_mapping({}), style_keys=("s",), created_at=1.0, items_total=3
    )
    batches = BatchStore(client=store.client, jobs=store, ttl_s=3600)
    items = [record("b-ok", "b1"), record("b-bad", "b1", JobStatus.FAILED), record("b-more", "b1")]
    Lifecycle(store=store, queue=RecordingQueue(), batches=batches).queue_batch(batch, items)
    check()
    assert store.backlog(keys.INTERACTIVE_QUEUE) == {"single"}
    assert store.backlog(keys.BULK_QUEUE) == {"b-ok", "b-more"}  # the refused item never counts
    for step in (
        lambda: lifecycle.start("single"),
        lambda: lifecycle.progress("single", Report(step=1, total_steps=3)),
        lambda: lifecycle.start("single"),  # redelivered after its worker died
        lambda: lifecycle.requeue("single", "worker stopping; requeued at step 1"),  # SIGTERM
        lambda: lifecycle.start("single"),
        lambda: lifecycle.succeed("single"),
        lambda: lifecycle.start("b-ok"),
        lambda: lifecycle.fail("b-ok", "out of memory"),
        lambda: lifecycle.cancel("b-more", "batch canceled", only_from=(JobStatus.QUEUED,)),
    ):
        step()
        check()
    assert store.backlog(keys.INTERACTIVE_QUEUE) == set() and store.backlog(keys.BULK_QUEUE) == set()


def test_a_killed_workers_job_stays_counted_until_the_reaper_requeues_it_and_it_ends(store):
    lifecycle = Lifecycle(store=store, queue=RecordingQueue())
    lifecycle.queue(record("dead", "b1"))
    lifecycle.start("dead")  # then kill -9: no lease renewed, the job stays running
    assert sets_and_truth(store, ["dead"]) == ({"interactive": set(), "bulk": {"dead"}},) * 2
    leases = LeaseStore(client=store.client, holder="reaper", lease_s=0.3)
    assert Reaper(lifecycle=lifecycle, store=store, leases=leases, interval_s=0.2).reap_once() == ["dead"]
    assert store.get("dead").status is JobStatus.QUEUED
    assert_exact(store, ["dead"])
    lifecycle.start("dead")
    lifecycle.succeed("dead")
    assert store.backlog(keys.BULK_QUEUE) == set()


def test_the_reaper_drops_a_job_whose_record_expired_before_it_ended(store):
    Lifecycle(store=store, queue=RecordingQueue()).queue(record("gone"))
    store.client.delete(keys.job_key("gone"))  # its TTL ran out while it sat queued
    leases = LeaseStore(client=store.client, holder="reaper", lease_s=0.3)
    Reaper(lifecycle=Lifecycle(store=store), store=store, leases=leases, interval_s=0.2).reap_once()
    assert store.backlog(keys.INTERACTIVE_QUEUE) == set()


def test_on_a_real_stack_the_backlog_follows_jobs_and_a_batch_to_their_ends(api, stack_settings):
    store = build_job_store(stack_settings)
    ids: list[str] = []
    seen: list[bool] = []
    stop = threading.Event()

    def watch() -> None:  # while jobs run, every sample of the sets agrees with the records
        while not stop.is_set():
            held, live = sets_and_truth(store, list(ids))
            seen.append(held == live)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for _ in range(2):
        job = submit(api.url, content=png_bytes(48, 40), style=png_bytes(32, 32), steps="6", max_dim="48")
        ids.append(job.json()["id"])
    files = [("content", (f"a/{n}.png", png_bytes(40, 40))) for n in range(2)]
    files += [("content", ("bad.png", b"not an image")), ("style", ("s.png", example("style")))]
    batch = requests.post(
        f"{api.url}/v1/batches",
        files=files,
        data={"preset": "seed", "steps": "4", "max_dim": "40"},
        timeout=30,
    ).json()
    ids.extend(item["job_id"] for item in batch["items"] if item["job_id"])
    for job_id in ids:
        wait_for_terminal(api.url, job_id, timeout=240)
    stop.set()
    watcher.join(timeout=5)
    assert len(ids) >= 4 and seen and all(seen)
    assert sets_and_truth(store, ids) == ({queue: set() for queue in keys.GPU_QUEUES},) * 2
