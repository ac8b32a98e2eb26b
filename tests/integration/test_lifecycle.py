"""The lifecycle's (status, verb) table, on a real redis-server: every pair either moves the job where the
verb leads, with its event, or is refused with Conflict and writes nothing. And its hooks, in and after the
transaction."""

import ast
import time
from pathlib import Path

import pytest

from shared import keys
from shared.errors import Conflict
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import LEADS_TO, LEAVES_FROM, Change, Lifecycle, LifecycleHook, Report, Verb
from shared.params import StyleParams
from shared.store import JobStore
from tests.fakes import RecordingQueue
from tests.integration.helpers import empty_job_store

pytestmark = pytest.mark.integration

Q, R, S, F, C = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
)
# The table, written out by hand: a change to LEAVES_FROM must change this too.
TABLE = {
    Verb.START: {Q, R},
    Verb.PROGRESS: {R},
    Verb.SUCCEED: {R},
    Verb.FAIL: {Q, R},
    Verb.CANCEL: {Q, R},
    Verb.REQUEUE: {R},
}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(redis_server):
    yield from empty_job_store(redis_server, 8)


def make_job(store: JobStore, status: JobStatus, job_id: str = "job1", batch_id: str = "") -> JobRecord:
    record = JobRecord(
        id=job_id,
        status=status,
        params=StyleParams.from_mapping({"steps": 3, "max_dim": 32}),
        content_key="c",
        style_keys=("s",),
        created_at=time.time(),
        batch_id=batch_id,
    )
    store.create(record)
    return record


def apply(lifecycle: Lifecycle, verb: Verb, job_id: str) -> None:
    if verb is Verb.PROGRESS:
        return lifecycle.progress(job_id, Report(step=1, total_steps=3, losses={"total": 1.0}))
    args = {Verb.FAIL: ("a reason",), Verb.CANCEL: ("a message",), Verb.REQUEUE: ("a message",)}
    getattr(lifecycle, verb.value)(job_id, *args.get(verb, ()))


def test_the_table_in_the_module_is_the_one_written_here():
    assert {verb: set(states) for verb, states in LEAVES_FROM.items() if verb is not Verb.QUEUE} == TABLE
    assert LEAVES_FROM[Verb.QUEUE] == ()  # only a new record is queued


@pytest.mark.parametrize("verb", list(TABLE), ids=lambda verb: verb.value)
@pytest.mark.parametrize("status", list(JobStatus), ids=lambda status: status.value)
def test_each_verb_moves_a_job_only_from_the_states_it_leaves(store, status, verb):
    make_job(store, status)
    lifecycle = Lifecycle(store=store, queue=RecordingQueue())
    events_before = len(store.events("job1"))
    if status in TABLE[verb]:
        apply(lifecycle, verb, "job1")
        assert store.get("job1").status is LEADS_TO[verb]
        assert len(store.events("job1")) == events_before + 1
    else:
        with pytest.raises(Conflict):
            apply(lifecycle, verb, "job1")
        assert store.get("job1").status is status
        assert len(store.events("job1")) == events_before  # nothing written


def test_only_from_narrows_a_verb_and_may_not_widen_it(store):
    make_job(store, R)
    lifecycle = Lifecycle(store=store)
    with pytest.raises(Conflict):
        lifecycle.cancel("job1", "canceled before it started", only_from=(Q,))
    assert store.get("job1").status is R
    with pytest.raises(ValueError):
        lifecycle.fail("job1", "r", only_from=(S,))


def test_an_ending_is_never_overwritten(store):
    make_job(store, R)
    lifecycle = Lifecycle(store=store)
    lifecycle.succeed("job1", result_key="k")
    for verb in (Verb.FAIL, Verb.CANCEL, Verb.START, Verb.REQUEUE):
        with pytest.raises(Conflict):
            apply(lifecycle, verb, "job1")
    assert store.get("job1").status is S and store.get("job1").result_key == "k"


class Recording(LifecycleHook):
    """Writes a key inside each change's transaction and records each change after it."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    def in_transaction(self, pipe, change: Change) -> None:
        pipe.incr(f"test:count:{change.verb.value}:{change.after.value}")

    def after(self, change: Change) -> None:
        self.changes.append(change)


def test_hooks_write_inside_the_transaction_and_hear_every_change_after_it(store):
    hook = Recording()
    queue = RecordingQueue()
    lifecycle = Lifecycle(store=store, queue=queue, hooks=[hook])
    record = JobRecord(
        id="job2",
        status=Q,
        params=StyleParams.from_mapping({}),
        content_key="c",
        style_keys=("s",),
        created_at=time.time(),
        batch_id="b1",
    )
    lifecycle.queue(record)
    lifecycle.start("job2")
    lifecycle.progress("job2", Report(step=1, total_steps=3))
    lifecycle.requeue("job2", "worker stopping")
    assert [(c.verb, c.before, c.after) for c in hook.changes] == [
        (Verb.QUEUE, None, Q),
        (Verb.START, Q, R),
        (Verb.PROGRESS, R, R),
        (Verb.REQUEUE, R, Q),
    ]
    assert queue.enqueued == [("job2", keys.BULK_QUEUE), ("job2", keys.BULK_QUEUE)]
    client = store.client
    assert [client.get(f"test:count:{v}") for v in ("queue:queued", "start:running", "requeue:queued")] == [
        "1",
        "1",
        "1",
    ]
    with pytest.raises(Conflict):
        lifecycle.succeed("job2")  # refused: its hook wrote nothing either
    assert client.get("test:count:succeed:succeeded") is None


class Refusing(RecordingQueue):
    def enqueue(self, job_id: str, *, queue: str) -> None:
        raise ConnectionError("broker away")


def test_a_job_the_broker_refuses_is_failed_with_the_reason(store):
    from shared.errors import QueueUnavailable

    record = make_job(store, Q)  # as queue() would have stored it, then the send fails:
    store.client.delete(keys.job_key("job1"))
    with pytest.raises(QueueUnavailable):
        Lifecycle(store=store, queue=Refusing()).queue(record)
    failed = store.get("job1")
    assert failed.status is F and "could not enqueue the job (ConnectionError)" in failed.error


def transition_calls(path: Path) -> list[int]:
    """Lines of ``path`` that call a method named ``transition``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "transition"
    ]


def test_no_module_but_the_lifecycle_calls_store_transition():
    found = {
        str(path.relative_to(ROOT)): lines
        for folder in ("api", "worker", "shared", "client", "bench", "deploy", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "shared" / "lifecycle.py" and (lines := transition_calls(path))
    }
    assert found == {}
    assert transition_calls(ROOT / "shared" / "lifecycle.py")  # the check finds calls where they are
