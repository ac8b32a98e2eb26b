"""Signed webhooks over real HTTP: a local receiver, the real API, Redis, S3, and both kinds of worker."""

import hashlib
import itertools
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devstack.processes import wait_until
from shared import keys
from shared.celery_config import create_producer
from shared.storage import build_object_store
from shared.store import build_job_store
from shared.webhooks import DELIVER_TASK, WebhookMessage, job_snapshot
from tests.conftest import WEBHOOK_SECRET
from tests.integration.helpers import png_bytes, submit, wait_for_terminal

pytestmark = pytest.mark.integration

TINY = {"steps": "4", "max_dim": "32", "preset": "balanced"}


class Receiver:
    """A local webhook endpoint: answers the scripted statuses in order, then 200; records every request."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        return Handler

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes, int]]:
        """Wait until `count` requests arrived; return them."""
        wait_until(lambda: len(self.received) >= count, timeout=timeout, what=f"{count} webhook requests")
        return list(self.received)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver_factory():
    receivers = []

    def make(*statuses: int) -> Receiver:
        receivers.append(Receiver(statuses))
        return receivers[-1]

    yield make
    for receiver in receivers:
        receiver.stop()


def verified(headers: dict[str, str], body: bytes) -> dict:
    """The payload, if the Standard Webhooks signature holds (raises otherwise)."""
    return Webhook(WEBHOOK_SECRET).verify(body, headers)


def test_a_receiver_that_keeps_failing_gets_the_configured_attempts_then_the_message_is_dropped(
    webhook_settings, webhook_worker, receiver_factory
):
    receiver = receiver_factory(*[503] * 10)
    message = WebhookMessage.build(receiver.url, "start", {"id": "x" * 32})
    create_producer(webhook_settings).send_task(
        DELIVER_TASK, args=message.to_args(), queue=keys.WEBHOOKS_QUEUE
    )
    receiver.wait_for(webhook_settings.webhook_max_attempts)
    wait_until(
        lambda: f"{message.msg_id} to" in webhook_worker.log() and "failed for good" in webhook_worker.log(),
        timeout=15,
        what="the final failure to be logged",
    )
    time.sleep(1.0)
    assert len(receiver.received) == webhook_settings.webhook_max_attempts
    assert "VGG19" not in webhook_worker.log()  # a webhooks-only worker never loads the model


def test_a_delivery_answered_500_twice_is_delivered_on_the_third_attempt_signed_with_one_id(
    webhook_api, webhook_settings, webhook_worker, receiver_factory
):
    job_id = submit(
        webhook_api.url, content=png_bytes(40, 30), style=png_bytes(32, 32, (20, 90, 200)), **TINY
    )
    job_id = job_id.json()["id"]
    assert wait_for_terminal(webhook_api.url, job_id)["status"] == "succeeded"
    record = build_job_store(webhook_settings).get(job_id)
    receiver = receiver_factory(500, 500)
    message = WebhookMessage.build(receiver.url, "completed", job_snapshot(record))

    create_producer(webhook_settings).send_task(
        DELIVER_TASK, args=message.to_args(), queue=keys.WEBHOOKS_QUEUE
    )

    attempts = receiver.wait_for(3)
    assert [status for _, _, status in attempts] == [500, 500, 200]
    assert {headers["webhook-id"] for headers, _, _ in attempts} == {message.msg_id}
    headers, body, _ = attempts[-1]
    payload = verified(headers, body)
    assert payload["type"] == "job.completed"
    assert payload["data"]["id"] == job_id and payload["data"]["status"] == "succeeded"
    assert payload["data"]["result_key"] == record.result_key
    tampered = body.replace(b'"succeeded"', b'"failed"')
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        verified(headers, tampered)
    time.sleep(1.0)  # a delivered message is not sent again
    assert len(receiver.received) == 3
    wait_until(
        lambda: f"{message.msg_id} delivered" in webhook_worker.log(), timeout=10, what="the delivery log"
    )


def test_a_private_address_webhook_is_refused_at_submission_and_nothing_is_stored(
    webhook_api, webhook_settings
):
    content = png_bytes(41, 29, (1, 2, 3))  # bytes no other test uploads
    client = redis.Redis.from_url(webhook_settings.redis_url)
    jobs_before = len(client.keys(keys.job_key("*")))

    response = submit(
        webhook_api.url, content=content, style=png_bytes(32, 32), webhook="http://10.1.2.3/hook"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "webhook" and "10.1.2.3" in error["message"]
    assert len(client.keys(keys.job_key("*"))) == jobs_before
    content_key = keys.input_object_key(hashlib.sha256(content).hexdigest(), "png")
    assert not build_object_store(webhook_settings).exists(content_key)


def test_a_batch_copies_its_webhook_onto_the_batch_and_every_item(
    webhook_api, webhook_settings, receiver_factory
):
    receiver = receiver_factory()
    files = [
        ("style", ("s.png", png_bytes(32, 32, (10, 10, 240)))),
        ("content", ("a/one.png", png_bytes(40, 30, (240, 10, 10)))),
        ("content", ("b/two.png", png_bytes(30, 40, (10, 240, 10)))),
    ]
    form = {**TINY, "webhook": receiver.url, "webhook_events": '["completed"]'}
    response = requests.post(f"{webhook_api.url}/v1/batches", files=files, data=form, timeout=60)
    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]
    client = redis.Redis.from_url(webhook_settings.redis_url, decode_responses=True)
    assert client.hget(keys.batch_key(batch_id), "webhook") == receiver.url
    job_ids = client.lrange(keys.batch_jobs_key(batch_id), 0, -1)
    store = build_job_store(webhook_settings)
    assert len(job_ids) == 2
    for job_id in job_ids:
        job = store.get(job_id)
        assert (job.webhook, job.webhook_events) == (receiver.url, ("completed",))
        wait_for_terminal(webhook_api.url, job_id)


def timestamp(payload: dict) -> datetime:
    return datetime.fromisoformat(payload["timestamp"])


def test_a_real_job_sends_started_throttled_progress_and_completed_all_signed(webhook_api, receiver_factory):
    receiver = receiver_factory()
    response = submit(
        webhook_api.url,
        content=png_bytes(40, 30, (90, 30, 30)),
        style=png_bytes(32, 32, (30, 30, 90)),
        webhook=receiver.url,
        **{**TINY, "steps": "40"},
    )
    job_id = response.json()["id"]
    assert wait_for_terminal(webhook_api.url, job_id)["status"] == "succeeded"
    wait_until(
        lambda: any(b'"job.completed"' in body for _, body, _ in receiver.received),
        timeout=30,
        what="job.completed",
    )
    # Deliveries run on several threads and may arrive out of order: receivers order them by timestamp.
    payloads = sorted((verified(headers, body) for headers, body, _ in receiver.received), key=timestamp)
    types = [payload["type"] for payload in payloads]
    assert types[0] == "job.started" and types[-1] == "job.completed"
    assert set(types[1:-1]) <= {"job.progress"}
    assert all(payload["data"]["id"] == job_id for payload in payloads)
    assert payloads[-1]["data"]["status"] == "succeeded"
    sent_at = [timestamp(payload) for payload in payloads if payload["type"] == "job.progress"]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sent_at)]
    assert all(gap >= 0.99 for gap in gaps), gaps
