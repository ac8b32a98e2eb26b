"""Fair share's release logic (shared.fair_share through shared.lifecycle) against a real redis-server, no
worker: the queue is a RecordingQueue, so every message sent is seen in order. Here, not in tests/unit: the
unit tier runs with fakes and no servers, and the Lua release and the transactions are what is tested.

The end-to-end check with a real worker (done-when 4) is test_fair_share.py.
"""

import threading
import time

import pytest

from shared import keys
from shared.batch_store import BatchStore
from shared.batches import BatchRecord
from shared.config import Settings
from shared.errors import QueueUnavailable
from shared.fair_share import FairShare
from shared.jobs import JobRecord, JobStatus
from shared.leases import LeaseStore
from shared.lifecycle import Lifecycle
from shared.params import StyleParams
from tests.fakes import RecordingQueue
from tests.integration.helpers import empty_job_store
from worker.reaper import Reaper

pytestmark = pytest.mark.integration

K = 2


@pytest.fixture
def store(redis_server):
    yield from empty_job_store(redis_server, 14)


class Stack:
    """A Lifecycle with fair share of K over a real Redis, and the queue it sends on."""

    def __init__(self, store, items: int = K, queue: RecordingQueue | None = None) -> None:
        self.store = store
        self.queue = queue or RecordingQueue()
        self.fair = FairShare(client=store.client, items=items)
        self.batches = BatchStore(client=store.client, jobs=store, ttl_s=3600)
        self.lifecycle = Lifecycle(store=store, queue=self.queue, batches=self.batches, fair_share=self.fair)

    def submit(self, tenant: str, batch_id: str, size: int) -> list[str]:
        """Queue a batch of ``size`` items owned by ``tenant``; their ids."""
        ids = [f"{batch_id}-{n}" for n in range(size)]
        batch = BatchRecord(
            id=batch_id,
            params=StyleParams.from_mapping({}),
            style_keys=("s",),
            created_at=time.time(),
            items_total=size,
            owner=tenant,
        )
        self.lifecycle.queue_batch(batch, [item(job_id, batch_id, tenant) for job_id in ids])
        return ids

    def sent(self) -> list[str]:
        return [job_id for job_id, _ in self.queue.enqueued]

    def finish(self, job_id: str) -> None:
        self.lifecycle.start(job_id)
        self.lifecycle.succeed(job_id)


def item(job_id: str, batch_id: str, tenant: str) -> JobRecord:
    return JobRecord(
        id=job_id,
        status=JobStatus.QUEUED,
        params=StyleParams.from_mapping({"steps": 2, "max_dim": 32}),
        content_key="c",
        style_keys=("s",),
        created_at=time.time(),
        batch_id=batch_id,
        owner=tenant,
    )


def reaper(stack: Stack) -> Reaper:
    leases = LeaseStore(client=stack.store.client, holder="reaper", lease_s=5)
    return Reaper(lifecycle=stack.lifecycle, store=stack.store, leases=leases, interval_s=0.1)


def test_a_tenant_has_k_items_released_and_the_next_goes_out_as_one_ends_in_fifo_order(store):
    stack = Stack(store)
    first = stack.submit("studio-a", "a1", 3)
    second = stack.submit("studio-a", "a2", 2)
    assert stack.sent() == first[:2]
    assert stack.fair.held("studio-a") == [first[2], *second]
    assert stack.fair.released("studio-a") == set(first[:2])
    assert all(queue == keys.BULK_QUEUE for _, queue in stack.queue.enqueued)
    for job_id in first + second:
        stack.finish(job_id)
    assert stack.sent() == first + second  # each sent once, in submission order across the tenant's batches
    assert stack.fair.released("studio-a") == set() and stack.fair.held("studio-a") == []
    assert stack.fair.tenants() == []  # nothing left to visit


def test_held_items_are_queued_counted_in_the_backlog_and_not_in_the_outbox(store):
    stack = Stack(store)
    ids = stack.submit("studio-a", "a1", 5)
    assert {store.get(job_id).status for job_id in ids} == {JobStatus.QUEUED}
    assert store.backlog(keys.BULK_QUEUE) == set(ids)  # KEDA sees the whole backlog, held items too
    assert store.client.zrange(keys.outbox_key(), 0, -1) == []  # the released ones were sent and confirmed
    store.client.zadd(keys.outbox_key(), {"unrelated": 0})
    reaper(stack).reap_once()
    assert stack.sent() == ids[:K]  # the reaper's re-send never sends a held item


def test_every_ending_frees_a_place_a_requeue_keeps_it_and_a_held_cancel_frees_none(store):
    stack = Stack(store)
    ids = stack.submit("studio-a", "a1", 7)
    lifecycle = stack.lifecycle
    lifecycle.start(ids[0])
    lifecycle.requeue(ids[0], "worker stopping")  # stays released, resent as today
    assert stack.sent() == [ids[0], ids[1], ids[0]]
    lifecycle.cancel(ids[5], "batch canceled")  # a held item: leaves the list, frees no place
    assert ids[5] not in stack.fair.held("studio-a") and stack.sent() == [ids[0], ids[1], ids[0]]
    lifecycle.start(ids[0])
    lifecycle.fail(ids[0], "engine failed")
    lifecycle.cancel(ids[1], "batch canceled")  # a released item, still queued
    lifecycle.start(ids[2])
    lifecycle.succeed(ids[2])
    assert stack.sent() == [ids[0], ids[1], ids[0], ids[2], ids[3], ids[4]]
    assert stack.fair.released("studio-a") == {ids[3], ids[4]}
    assert stack.fair.held("studio-a") == [ids[6]]


def test_a_second_tenant_interleaves_instead_of_waiting_behind_the_first_tenants_batch(store):
    stack = Stack(store)
    a = stack.submit("studio-a", "a1", 10)
    b = stack.submit("studio-b", "b1", 3)
    assert stack.sent() == [a[0], a[1], b[0], b[1]]


@pytest.mark.parametrize("items", [4, 0])
def test_one_fifo_worker_finishes_all_of_b_before_a_15th_only_with_fair_share(store, items):
    """One worker serving the bulk queue FIFO, one item at a time: A's 40 items, then B's 5 once the worker
    is on A's first."""
    stack = Stack(store, items=items)
    a = stack.submit("studio-a", "a", 40)
    finished, taken = [], 0

    def serve_one() -> None:
        nonlocal taken
        job_id = stack.sent()[taken]
        taken += 1
        if store.get(job_id).status is JobStatus.QUEUED:  # else a stale message: skipped, as the runner does
            stack.finish(job_id)
            finished.append(job_id)

    serve_one()  # the worker is on A's first item when B submits
    b = stack.submit("studio-b", "b", 5)
    while taken < len(stack.sent()):
        serve_one()
    assert sorted(finished) == sorted(a + b)
    last_b, a_15th = max(finished.index(job_id) for job_id in b), finished.index(a[14])
    if items:
        assert last_b < a_15th  # done-when 4's order
    else:
        assert last_b > finished.index(a[-1])  # the control: without fair share B waits behind all of A


def test_concurrent_releases_never_pass_k(store):
    stack = Stack(store, items=3)
    ids = stack.submit("studio-a", "a1", 50)
    unfair = Lifecycle(store=store)  # ends the 3 released without releasing more: 47 held, none released
    for job_id in ids[:3]:
        unfair.start(job_id)
        unfair.succeed(job_id)
    barrier = threading.Barrier(8)
    released: list[str] = []

    def release() -> None:
        barrier.wait()
        released.extend(stack.fair.release("studio-a"))

    threads = [threading.Thread(target=release) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stack.fair.released("studio-a")) == 3
    assert sorted(released) == sorted(ids[3:6])  # each once, whichever thread moved it
    assert stack.fair.held("studio-a") == ids[6:]


def test_a_crash_between_an_ending_and_its_release_is_repaired_by_the_reaper(store):
    stack = Stack(store)
    ids = stack.submit("studio-a", "a1", 4)
    crashed = Lifecycle(store=store, queue=stack.queue)  # no fair share: it forgets the place, releases none
    crashed.start(ids[0])
    crashed.succeed(ids[0])
    assert stack.sent() == ids[:2] and stack.fair.released("studio-a") == {ids[1]}
    reaper(stack).reap_once()
    assert stack.sent() == ids[:3]


def test_a_crash_between_release_and_send_leaves_the_item_in_the_outbox_for_the_reaper(store):
    stack = Stack(store)
    ids = stack.submit("studio-a", "a1", 3)
    stack.fair.items = 3  # one more place: released (into the outbox) by hand, its send never made
    assert stack.fair.release("studio-a") == [ids[2]]
    store.client.zadd(keys.outbox_key(), {ids[2]: time.time() - 60})  # as if the sender died a minute ago
    reaper(stack).reap_once()
    assert stack.sent() == [ids[0], ids[1], ids[2]]
    assert store.client.zscore(keys.outbox_key(), ids[2]) is None


def test_a_released_item_whose_record_expired_frees_its_place_on_the_reapers_pass(store):
    stack = Stack(store)
    ids = stack.submit("studio-a", "a1", 3)
    store.client.delete(keys.job_key(ids[0]))  # its TTL ran out: no verb will ever end it
    reaper(stack).reap_once()
    assert stack.fair.released("studio-a") == {ids[1], ids[2]} and stack.sent() == ids


def test_a_refused_send_fails_the_batchs_unsent_items_held_ones_too(store):
    class Refusing(RecordingQueue):
        def enqueue(self, job_id: str, *, queue: str) -> None:
            if self.enqueued:
                raise ConnectionError("broker away")
            super().enqueue(job_id, queue=queue)

    stack = Stack(store, queue=Refusing())
    with pytest.raises(QueueUnavailable):
        stack.submit("studio-a", "a1", 4)
    statuses = [store.get(f"a1-{n}").status for n in range(4)]
    assert statuses == [JobStatus.QUEUED] + [JobStatus.FAILED] * 3
    assert stack.fair.held("studio-a") == [] and stack.fair.released("studio-a") == {"a1-0"}


def test_a_job_group_takes_only_released_items_of_its_batch(store):
    from tests.fakes import FakeObjectStore
    from worker.runner import JobRunner

    stack = Stack(store, items=3)
    ids = stack.submit("studio-a", "a1", 6)
    runner = JobRunner(
        store=store,
        objects=FakeObjectStore(),
        extractor=None,
        settings=Settings(group_jobs=3, fair_share_items=3),
        batches=stack.batches,
        fair_share=stack.fair,
    )
    leader = store.get(ids[0])
    assert [record.id for record in runner.queued_after(leader, 10)] == ids[1:3]


def test_a_batch_cancel_sends_no_item_only_to_cancel_it(store):
    """Through the API's use case: the held items are canceled before the released ones, so no ending of a
    released item releases (and sends) one of the batch's next."""
    import io

    from api import create_app
    from api.services import Services
    from tests.fakes import FakeObjectStore
    from tests.fixtures.badimages import noise_png

    stack = Stack(store)
    services = Services(
        settings=Settings(auth="open"),
        store=store,
        objects=FakeObjectStore(),
        queue=stack.queue,
        batches=stack.batches,
        fair_share=stack.fair,
    )
    client = create_app(services=services).test_client()
    data = {"content": [(io.BytesIO(noise_png(40, 40, seed=n)), f"{n}.png") for n in range(6)]}
    data |= {"style": (io.BytesIO(noise_png(32, 32, seed=99)), "s.png"), "steps": "2", "max_dim": "32"}
    accepted = client.post("/v1/batches", data=data, content_type="multipart/form-data")
    assert accepted.status_code == 202, accepted.get_json()
    batch_id = accepted.get_json()["id"]
    assert len(stack.sent()) == K
    assert client.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
    assert {store.get(job_id).status for job_id in stack.batches.job_ids(batch_id)} == {JobStatus.CANCELED}
    assert len(stack.sent()) == K  # forwards, each canceled released item would have sent a held one
    assert stack.fair.tenants() == []
