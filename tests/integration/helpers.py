"""HTTP helpers for integration tests, and the backlog check they share."""

import io
import socket
import time
from pathlib import Path

import redis
import requests
from PIL import Image

from shared import keys
from shared.jobs import JobStatus
from shared.queue import queue_for
from shared.store import JobStore

REPO = Path(__file__).resolve().parents[2]
CONTENT = REPO / "examples" / "content"
STYLE = REPO / "examples" / "style"


def example(kind: str) -> bytes:
    """The bytes of the first example image of a kind ('content' or 'style')."""
    folder = CONTENT if kind == "content" else STYLE
    return sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))[0].read_bytes()


def png_bytes(width: int, height: int, color=(200, 60, 30)) -> bytes:
    """A small solid PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def submit(base_url: str, *, content: bytes | None, style: bytes | None, **form: str) -> requests.Response:
    """POST /v1/jobs with the given files and form fields (preset `seed` unless given: the checks here are
    about the system, not the default preset, which test_quality.py covers)."""
    form.setdefault("preset", "seed")
    files = {}
    if content is not None:
        files["content"] = ("content.png", content, "application/octet-stream")
    if style is not None:
        files["style"] = ("style.png", style, "application/octet-stream")
    return requests.post(f"{base_url}/v1/jobs", files=files, data=form, timeout=30)


def wait_for_terminal(base_url: str, job_id: str, timeout: float = 120) -> dict:
    """Poll GET /v1/jobs/{id} until the job is terminal; return its JSON. A 503 (Redis loading or away) is
    waited out for its Retry-After, as the SDK does."""
    deadline, job = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        response = requests.get(f"{base_url}/v1/jobs/{job_id}", timeout=10)
        if response.status_code == 503:
            time.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
            continue
        job = response.json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not terminal after {timeout} s: {job}")


def host_address() -> str | None:
    """This host's address on its default route (not loopback), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent, only a route chosen
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def sets_and_truth(store, job_ids) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per GPU queue: which of ``job_ids`` its backlog set holds, and which are queued or running there by
    their records; both read in one MULTI, so a transition can never fall between the two reads."""
    pipe = store.client.pipeline(transaction=True)
    for queue in keys.GPU_QUEUES:
        pipe.smembers(keys.backlog_key(queue))
    for job_id in job_ids:
        pipe.hmget(keys.job_key(job_id), ["status", "batch_id"])
    replies = pipe.execute()
    held = {
        queue: set(members) & set(job_ids) for queue, members in zip(keys.GPU_QUEUES, replies, strict=False)
    }
    live = {queue: set() for queue in keys.GPU_QUEUES}
    for job_id, (status, batch_id) in zip(job_ids, replies[len(keys.GPU_QUEUES) :], strict=True):
        if status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value):
            live[queue_for(batch_id or "")].add(job_id)
    return held, live


def empty_job_store(redis_server, db: int):
    """A JobStore on an emptied database of the session's redis-server, emptied after (a fixture's body)."""
    client = redis.Redis.from_url(redis_server.url(db), decode_responses=True)
    client.flushdb()
    yield JobStore(client=client, ttl_s=3600, events_maxlen=100)
    client.flushdb()
