"""Server-sent events: a job's or a batch's event stream over HTTP, resumable with Last-Event-ID.

Each SSE event is one entry of the Redis stream (`id:` is the stream id, `event:` the entry's type), so a
client that reconnects with `Last-Event-ID` is sent exactly the entries after that id: no gaps, no duplicates.
A stream ends after the terminal event (for a batch: once no item is queued or running). A client that
reconnects after the end is answered 204, which tells EventSource to stop reconnecting.

Each open stream holds one server thread and one Redis connection of its own for as long as it is open
(see deploy/gunicorn.conf.py).
"""

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import redis
from flask import Blueprint, Response, request

from api.jobs import checked_id
from api.services import services
from shared import keys
from shared.batch_store import BatchStore
from shared.errors import InvalidInput, NotFound
from shared.events import JobEvent
from shared.jobs import ACTIVE_STATUSES, TERMINAL_STATUSES
from shared.store import JobStore

# Seconds of silence after which a `: heartbeat` comment is sent, so proxies and clients keep an idle stream
# open (common proxy idle timeouts are 30-60 s). It is also how often an idle stream re-checks whether it is
# done. Read per request, so tests can shrink it.
HEARTBEAT_S = 15.0
# Entries read per XREAD; a reconnecting client catches up in pages of this many.
READ_COUNT = 100
# Seconds the dedicated connection waits for Redis beyond the blocking read's own timeout.
SOCKET_GRACE_S = 10.0

# A Redis stream id as this API issues them: milliseconds, then a sequence number. Each part has at most 19
# digits, so it fits Redis's 64-bit integers (2**64 has 20); api/openapi.py documents the same pattern.
STREAM_ID = re.compile(r"[0-9]{1,19}(-[0-9]{1,19})?")  # ASCII digits only: Redis refuses Arabic-Indic ones

bp = Blueprint("events", __name__)


@dataclass(frozen=True)
class Feed:
    """One stream to follow: its key, where to start, and how to tell that nothing more will come."""

    stream: str
    after: str
    is_done: Callable[[], bool]
    presign: Callable[[str], str]  # object key -> URL, for snapshot events


@bp.get("/v1/jobs/<job_id>/events")
def job_events(job_id: str):
    """A job's status and progress events as text/event-stream, ending after its terminal event."""
    store = services().store  # captured now: the stream outlives the request context
    job_id = checked_id(job_id)
    store.get(job_id)  # NotFound -> 404 before any streaming starts
    done = functools.partial(_job_done, store, job_id)
    feed = Feed(keys.job_events_key(job_id), _last_event_id(), done, services().objects.presign)
    return _sse_response(feed)


@bp.get("/v1/batches/<batch_id>/events")
def batch_events(batch_id: str):
    """Every item's events of a batch, interleaved, ending once no item is queued or running."""
    batches = services().batches  # captured now: the stream outlives the request context
    batch = batches.get(checked_id(batch_id))
    done = functools.partial(_batch_done, batches, batch.id)
    feed = Feed(keys.batch_events_key(batch.id), _last_event_id(), done, services().objects.presign)
    return _sse_response(feed)


def _last_event_id() -> str:
    """Where to resume: the Last-Event-ID header, else ?last_event_id=, else (both absent or empty) the start.

    Both are checked when both are given, though the header wins: a malformed id is refused wherever it is.
    """
    given = [request.headers.get("Last-Event-ID", ""), request.args.get("last_event_id", "")]
    for raw in given:
        if raw and not STREAM_ID.fullmatch(raw):
            raise InvalidInput(
                f"Last-Event-ID {raw[:64]!r} is not an event id of this API", field="last_event_id"
            )
    return next((raw for raw in given if raw), "0-0")


def _job_done(store: JobStore, job_id: str) -> bool:
    try:
        return store.get(job_id).status.is_terminal
    except NotFound:  # expired while followed: nothing more will come
        return True


def _batch_done(batches: BatchStore, batch_id: str) -> bool:
    rows = batches.items(batches.job_ids(batch_id))
    return not any(row["status"] in ACTIVE_STATUSES for row in rows)


def _sse_response(feed: Feed) -> Response:
    client = _stream_client()
    if feed.is_done() and not client.xread({feed.stream: feed.after}, count=1):
        client.close()
        return Response(status=204)  # finished and nothing missed: EventSource stops reconnecting
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx: pass events through at once
    return Response(
        _closing(follow(client, feed, HEARTBEAT_S), client), mimetype="text/event-stream", headers=headers
    )


def _stream_client() -> redis.Redis:
    # Its own connection: a blocking XREAD holds a connection for up to HEARTBEAT_S, so the read timeout must
    # exceed that, and the request handlers' shared pool should not lend its connections for it.
    return redis.Redis.from_url(
        services().settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=HEARTBEAT_S + SOCKET_GRACE_S,
    )


def _closing(events: Iterator[str], client: redis.Redis) -> Iterator[str]:
    # The server closes the iterator when the client goes away; the connection goes with it.
    try:
        yield from events
    finally:
        client.close()


def follow(client: redis.Redis, feed: Feed, heartbeat_s: float) -> Iterator[str]:
    """SSE text of every entry after feed.after, with heartbeats while idle, until the feed is done.

    Done is checked before the read that would end the stream, so an entry written just before the terminal
    status is always sent: once done, reads stop blocking and the stream ends at the first empty one.
    """
    after, done = feed.after, feed.is_done()
    while True:
        block = None if done else max(int(heartbeat_s * 1000), 1)
        found = client.xread({feed.stream: after}, count=READ_COUNT, block=block)
        entries = found[0][1] if found else []
        for entry_id, fields in entries:
            yield format_event(entry_id, fields, feed.presign)
            after = entry_id
        if done and not entries:
            return
        if not entries:
            yield ": heartbeat\n\n"
        if not entries or any(fields.get("status") in TERMINAL_STATUSES for _, fields in entries):
            done = done or feed.is_done()


def format_event(entry_id: str, fields: dict[str, str], presign: Callable[[str], str]) -> str:
    """One stream entry as an SSE event; data is the entry's fields with numbers and losses parsed.

    A snapshot event also carries `image_url`, a presigned URL of its intermediate image."""
    data = {**fields, **asdict(JobEvent.from_fields(fields))}  # keeps fields JobEvent does not know yet
    if data.get("image_key"):
        data["image_url"] = presign(data["image_key"])
    return f"id: {entry_id}\nevent: {fields.get('type', 'message')}\ndata: {json.dumps(data)}\n\n"
