"""Server-sent events over real HTTP, Redis and a real worker: resuming, heartbeats, termination, 404s."""

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import requests

from api import events as sse
from shared import keys
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import Lifecycle
from shared.params import StyleParams
from shared.store import build_job_store
from tests.integration.helpers import example, submit, wait_for_terminal

pytestmark = pytest.mark.integration

SMALL_JOB = {"max_dim": "32", "steps": "40", "preset": "balanced"}  # progress every 2 steps: ~20 events


def open_stream(url: str, *, last_event_id: str | None = None, query: bool = False) -> requests.Response:
    """GET an event stream, resuming after last_event_id (as the header, or as ?last_event_id=)."""
    headers, params = {"Accept": "text/event-stream"}, {}
    if last_event_id and query:
        params["last_event_id"] = last_event_id
    elif last_event_id:
        headers["Last-Event-ID"] = last_event_id
    response = requests.get(url, headers=headers, params=params, stream=True, timeout=30)
    response.raise_for_status()
    return response


def sse_blocks(response: requests.Response) -> Iterator[dict]:
    """Each SSE block of a response as {"id", "event", "data"}, or {"comment": text} for a comment line."""
    block: dict = {}
    for line in response.iter_lines(chunk_size=1, decode_unicode=True):
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(": ")
            block[name] = json.loads(value) if name == "data" else value
        elif block:
            yield block
            block = {}


def read_events(response: requests.Response, limit: int | None = None) -> list[dict]:
    """The stream's events, comments skipped: `limit` of them and disconnect, or all until the server ends."""
    got = []
    for block in sse_blocks(response):
        if "comment" in block:
            continue
        got.append(block)
        if limit is not None and len(got) == limit:
            break
    response.close()
    return got


@pytest.fixture
def store(stack_settings):
    return build_job_store(stack_settings)


def test_reconnecting_with_last_event_id_gets_every_missed_event_once(api, store):
    created = submit(api.url, content=example("content"), style=example("style"), **SMALL_JOB).json()
    url = f"{api.url}/v1/jobs/{created['id']}/events"

    first = read_events(open_stream(url), limit=4)  # then the client drops
    second = read_events(open_stream(url, last_event_id=first[-1]["id"]), limit=4)
    wait_for_terminal(api.url, created["id"])  # the events of the rest of the run pile up unread
    rest = read_events(open_stream(url, last_event_id=second[-1]["id"], query=True))

    received = [event["id"] for event in first + second + rest]
    stored = [entry_id for entry_id, _ in store.events(created["id"])]
    assert received == stored  # in order, no gaps, no duplicates
    assert len(stored) >= 20
    assert rest[-1]["event"] == "status" and rest[-1]["data"]["status"] == "succeeded"
    steps = [event["data"]["step"] for event in first + second + rest if event["event"] == "progress"]
    assert steps == sorted(steps) and steps[-1] == 40
    assert all(isinstance(event["data"]["losses"], dict) for event in first + second + rest)


def test_event_data_carries_the_entry_fields_with_parsed_losses(api, store):
    created = submit(api.url, content=example("content"), style=example("style"), **SMALL_JOB).json()
    streamed = read_events(open_stream(f"{api.url}/v1/jobs/{created['id']}/events"))
    stored = dict(store.events(created["id"]))
    progress = next(event for event in streamed if event["event"] == "progress")
    expected = stored[progress["id"]]
    assert progress["data"]["job_id"] == created["id"]
    assert progress["data"]["step"] == expected.step and progress["data"]["total_steps"] == 40
    assert progress["data"]["losses"] == expected.losses and set(expected.losses) >= {"total", "style"}


def test_snapshot_events_carry_a_url_of_the_intermediate_image_and_come_before_the_end(api):
    created = submit(
        api.url, content=example("content"), style=example("style"), save_every="10", **SMALL_JOB
    ).json()
    streamed = read_events(open_stream(f"{api.url}/v1/jobs/{created['id']}/events"))
    snapshots = [event["data"] for event in streamed if event["event"] == "snapshot"]
    assert [snapshot["step"] for snapshot in snapshots] == [10, 20, 30, 40]
    assert snapshots[-1]["image_key"] == keys.step_object_key("anonymous", created["id"], 40)
    assert requests.get(snapshots[-1]["image_url"], timeout=10).content[:4] == b"\x89PNG"
    assert streamed[-1]["data"]["status"] == "succeeded"


def test_reconnecting_after_the_end_is_told_to_stop(api):
    created = submit(api.url, content=example("content"), style=example("style"), **SMALL_JOB).json()
    wait_for_terminal(api.url, created["id"])
    url = f"{api.url}/v1/jobs/{created['id']}/events"
    last = read_events(open_stream(url))[-1]
    again = requests.get(url, headers={"Last-Event-ID": last["id"]}, timeout=10)
    assert again.status_code == 204  # EventSource stops reconnecting on 204


def test_an_idle_stream_sends_heartbeats_and_ends_at_the_terminal_status(api, store, monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT_S", 0.2)
    record = _unqueued_job(store)  # stays queued: no worker ever sees it
    response = open_stream(f"{api.url}/v1/jobs/{record.id}/events")
    blocks = sse_blocks(response)
    assert next(blocks)["data"]["status"] == "queued"
    assert next(blocks) == {"comment": "heartbeat"}
    assert next(blocks) == {"comment": "heartbeat"}

    Lifecycle(store=store).cancel(record.id, "canceled by the test")
    rest = [block for block in blocks if "comment" not in block]  # ends by itself, or the test times out
    assert [block["data"]["status"] for block in rest] == ["canceled"]
    assert rest[0]["data"]["message"] == "canceled by the test"


def test_batch_stream_ends_when_no_item_is_queued_or_running(api, stack_settings):
    files = [("content", (path, example("content"))) for path in ("a/one.png", "b/two.png")]
    files.append(("style", ("style.jpg", example("style"))))
    form = {"max_dim": "32", "steps": "6", "preset": "balanced"}
    batch = requests.post(f"{api.url}/v1/batches", files=files, data=form, timeout=60).json()

    started = time.monotonic()
    streamed = read_events(open_stream(f"{api.url}/v1/batches/{batch['id']}/events"))
    assert time.monotonic() - started < 120

    finished = requests.get(f"{api.url}/v1/batches/{batch['id']}", timeout=10).json()
    assert finished["counts"]["succeeded"] == 2
    client = redis.Redis.from_url(stack_settings.redis_url, decode_responses=True)
    stored = [entry_id for entry_id, _ in client.xrange(keys.batch_events_key(batch["id"]))]
    assert [event["id"] for event in streamed] == stored
    job_ids = {item["job_id"] for item in finished["items"]}
    ended = {event["data"]["job_id"] for event in streamed if event["data"]["status"] == "succeeded"}
    assert ended == job_ids


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/jobs/{uuid.uuid4().hex}/events",
        f"/v1/batches/{uuid.uuid4().hex}/events",
        "/v1/jobs/not-an-id/events",
        "/v1/batches/NOT-AN-ID/events",
    ],
)
def test_unknown_ids_answer_404_json(api, path):
    response = requests.get(f"{api.url}{path}", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"


def test_a_malformed_last_event_id_answers_400_naming_it(api, store):
    record = _unqueued_job(store)
    url = f"{api.url}/v1/jobs/{record.id}/events"
    response = requests.get(url, headers={"Last-Event-ID": "yesterday"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "last_event_id"


def _unqueued_job(store) -> JobRecord:
    """A job recorded as queued but never enqueued, so its stream stays open until the test moves it."""
    record = JobRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.QUEUED,
        params=StyleParams.from_mapping({"max_dim": 32, "steps": 1}),
        content_key="inputs/none.png",
        style_keys=("inputs/none.png",),
        created_at=time.time(),
        total_steps=1,
    )
    store.create(record)
    return record
