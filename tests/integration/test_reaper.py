"""Leases, the reaper and the outbox on a real redis-server (no worker: the queue is a recording fake)."""

import time

import pytest
import redis

from shared import keys
from shared.jobs import JobRecord, JobStatus
from shared.leases import LeaseStore
from shared.lifecycle import Lifecycle
from shared.params import StyleParams
from shared.store import JobStore
from tests.fakes import RecordingQueue
from worker.reaper import Reaper

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_server):
    client = redis.Redis.from_url(redis_server.url(7), decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def store(client):
    return JobStore(client=client, ttl_s=3600, events_maxlen=100)


def make_job(store: JobStore, job_id: str, *, batch_id: str = "") -> None:
    params = StyleParams.from_mapping({"steps": 3, "max_dim": 32})
    store.create(
        JobRecord(
            id=job_id,
            status=JobStatus.QUEUED,
            content_key="c",
            style_keys=("s",),
            params=params,
            created_at=time.time(),
            batch_id=batch_id,
        )
    )


def reaper(store: JobStore, holder: str, queue: RecordingQueue | None = None) -> Reaper:
    leases = LeaseStore(client=store.client, holder=holder, lease_s=0.3)
    lifecycle = Lifecycle(store=store, queue=queue or RecordingQueue())
    return Reaper(lifecycle=lifecycle, store=store, leases=leases, interval_s=0.2)


def test_a_lease_is_held_renewed_and_released_only_by_its_holder(client):
    first = LeaseStore(client=client, holder="w1", lease_s=0.3)
    second = LeaseStore(client=client, holder="w2", lease_s=0.3)
    assert first.acquire("job1") and not second.acquire("job1")
    assert first.renew("job1") and not second.renew("job1")
    second.release("job1")
    assert first.is_leased("job1")
    time.sleep(0.4)  # not renewed: it expires
    assert not first.is_leased("job1") and not first.renew("job1")
    assert second.acquire("job1")


def test_a_requeue_hands_the_lease_over_before_the_new_message_can_be_received(store):
    make_job(store, "stopping")
    holder = LeaseStore(client=store.client, holder="w-stopping", lease_s=30)
    assert holder.acquire("stopping")
    lifecycle = Lifecycle(store=store, queue=RecordingQueue())
    lifecycle.start("stopping")
    lifecycle.requeue("stopping", "worker stopping; requeued at step 6")  # SIGTERM: its lease still held
    receiver = LeaseStore(client=store.client, holder="w-idle", lease_s=30)
    assert receiver.acquire("stopping")  # the next worker takes the job, not skips it as a duplicate
    holder.release("stopping")  # the stopping worker's `finally` leaves the new holder's lease alone
    assert receiver.renew("stopping") and not holder.renew("stopping")


def test_the_reaper_requeues_a_running_job_whose_lease_expired_and_leaves_leased_ones(store):
    for job_id in ("dead", "alive"):
        make_job(store, job_id, batch_id="b1" if job_id == "dead" else "")
        Lifecycle(store=store).start(job_id)
    LeaseStore(client=store.client, holder="w-alive", lease_s=30).acquire("alive")
    queue = RecordingQueue()
    assert reaper(store, "reaper1", queue).reap_once() == ["dead"]
    assert store.get("dead").status is JobStatus.QUEUED and store.get("alive").status is JobStatus.RUNNING
    assert queue.enqueued == [("dead", keys.BULK_QUEUE)]
    assert store.undispatched(older_than_s=0) == []  # sent, so out of the outbox


def test_one_reaper_acts_per_interval(store):
    make_job(store, "dead")
    Lifecycle(store=store).start("dead")
    first, second = RecordingQueue(), RecordingQueue()
    assert reaper(store, "r1", first).reap_once() == ["dead"]
    Lifecycle(store=store).start("dead")  # dead again at once
    assert reaper(store, "r2", second).reap_once() == []  # r1 holds the lock for this interval
    time.sleep(0.25)
    assert reaper(store, "r2", second).reap_once() == ["dead"]
    assert (len(first.enqueued), len(second.enqueued)) == (1, 1)


def test_a_queued_job_whose_message_was_never_sent_is_sent_again(store, monkeypatch):
    make_job(store, "orphan")  # queued, as if the sender died before enqueueing
    make_job(store, "sent")
    store.dispatched("sent")
    queue = RecordingQueue()
    monkeypatch.setattr(time, "time", lambda real=time.time: real() + 60)  # a minute later
    reaper(store, "r1", queue).reap_once()
    assert queue.enqueued == [("orphan", keys.INTERACTIVE_QUEUE)]
    assert store.undispatched(older_than_s=0) == []
