"""The fair-share lifecycle hook, alone: which changes hold, forget and release (no Redis: a recording pipe).

The release itself (Lua, transactions, the reaper's pass) runs on a real Redis in
tests/integration/test_fair_share_release.py.
"""

import time

import pytest

from shared import keys
from shared.fair_share import FairShareHook
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import Change, Verb
from shared.params import StyleParams

pytestmark = pytest.mark.unit

Q, R, S, F, C = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
)


class RecordingPipe:
    """Remembers each command queued on it."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append((name, *args))


class StubFairShare:
    def __init__(self, items: int) -> None:
        self.items = items

    @property
    def holds(self) -> bool:
        return self.items > 0

    def hold(self, pipe, tenant: str, job_id: str) -> None:
        pipe.hold(tenant, job_id)


def change(verb: Verb, before, after, *, batch_id: str = "b1") -> Change:
    record = JobRecord(
        id="j1",
        status=after,
        params=StyleParams.from_mapping({}),
        content_key="c",
        style_keys=("s",),
        created_at=time.time(),
        batch_id=batch_id,
        owner="studio-a",
    )
    return Change(verb, "j1", batch_id, before, after, record=record)


def run(hook: FairShareHook, item: Change) -> list[tuple]:
    pipe = RecordingPipe()
    hook.in_transaction(pipe, item)
    hook.after(item)
    return pipe.calls


FORGET = [
    ("srem", keys.fair_released_key("studio-a"), "j1"),
    ("lrem", keys.fair_held_key("studio-a"), 0, "j1"),
]


def test_a_new_queued_batch_item_is_held_only_while_fair_share_is_on():
    released: list[str] = []
    on = FairShareHook(StubFairShare(4), release=released.append)
    off = FairShareHook(StubFairShare(0), release=released.append)
    assert run(on, change(Verb.QUEUE, None, Q)) == [("hold", "studio-a", "j1")]
    assert run(off, change(Verb.QUEUE, None, Q)) == []
    assert run(on, change(Verb.QUEUE, None, F)) == []  # refused at submission: never held, never released
    assert run(on, change(Verb.QUEUE, None, Q, batch_id="")) == []  # a single job
    assert released == []


@pytest.mark.parametrize(
    ("verb", "before", "after"), [(Verb.SUCCEED, R, S), (Verb.FAIL, Q, F), (Verb.CANCEL, Q, C)]
)
def test_every_ending_forgets_the_item_and_releases_the_tenants_next(verb, before, after):
    released: list[str] = []
    hook = FairShareHook(StubFairShare(4), release=released.append)
    assert run(hook, change(verb, before, after)) == FORGET
    assert released == ["studio-a"]


def test_an_ending_is_forgotten_even_where_no_fair_share_is_configured_and_nothing_is_released():
    released: list[str] = []
    hook = FairShareHook(None, release=released.append)
    assert run(hook, change(Verb.SUCCEED, R, S)) == FORGET
    assert released == []


def test_start_requeue_and_progress_keep_the_items_place():
    released: list[str] = []
    hook = FairShareHook(StubFairShare(4), release=released.append)
    for verb, before, after in [(Verb.START, Q, R), (Verb.REQUEUE, R, Q), (Verb.PROGRESS, R, R)]:
        assert run(hook, change(verb, before, after)) == []
    assert released == []
