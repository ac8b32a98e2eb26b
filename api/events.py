"""Server-sent events: a job's or a batch's event stream over HTTP, resumable with Last-Event-ID.

Each SSE event is one entry of the Redis stream (`id:` is the stream id, `event:` the entry's type), so a
client that reconnects with `Last-Event-ID` is sent exactly the entries after that id: no gaps, no duplicates.
A stream ends after the terminal event (for a batch: once no item is queued or running). A client that
reconnects after the end is answered 204, which tells EventSource to stop reconnecting.

Each open stream holds one server thread and one Redis connection of its own for as long as it is open
(see deploy/gunicorn.conf.py).
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict

from flask import Blueprint, Response, request

from api import usecases
from api.usecases.feeds import Feed
from shared.errors import InvalidInput
from shared.events import JobEvent
from shared.jobs import TERMINAL_STATUSES

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


@bp.get("/v1/jobs/<job_id>/events")
def job_events(job_id: str):
    """A job's status and progress events as text/event-stream, ending after its terminal event."""
    return _sse_response(usecases.job_feed(job_id, _last_event_id(), timeout_s=_read_timeout()))


@bp.get("/v1/batches/<batch_id>/events")
def batch_events(batch_id: str):
    """Every item's events of a batch, interleaved, ending once no item is queued or running."""
    return _sse_response(usecases.batch_feed(batch_id, _last_event_id(), timeout_s=_read_timeout()))


def _read_timeout() -> float:
    # A blocking read waits up to HEARTBEAT_S: the feed's own connection must wait longer than that.
    return HEARTBEAT_S + SOCKET_GRACE_S


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


def _sse_response(feed: Feed) -> Response:
    if feed.is_done() and not feed.reader.read(feed.after, count=1):
        feed.reader.close()
        return Response(status=204)  # finished and nothing missed: EventSource stops reconnecting
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx: pass events through at once
    return Response(_closing(follow(feed, HEARTBEAT_S), feed), mimetype="text/event-stream", headers=headers)


def _closing(events: Iterator[str], feed: Feed) -> Iterator[str]:
    # The server closes the iterator when the client goes away; the feed's connection goes with it.
    try:
        yield from events
    finally:
        feed.reader.close()


def follow(feed: Feed, heartbeat_s: float) -> Iterator[str]:
    """SSE text of every entry after feed.after, with heartbeats while idle, until the feed is done.

    Done is checked before the read that would end the stream, so an entry written just before the terminal
    status is always sent: once done, reads stop blocking and the stream ends at the first empty one.
    """
    after, done = feed.after, feed.is_done()
    while True:
        block = None if done else max(int(heartbeat_s * 1000), 1)
        entries = feed.reader.read(after, count=READ_COUNT, block_ms=block)
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
