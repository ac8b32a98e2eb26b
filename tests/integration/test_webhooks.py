"""Signed webhooks over real HTTP: a local receiver, the real API, Redis, S3, and both kinds of worker."""

import hashlib
import ipaddress
import itertools
import logging
import socket
import ssl
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devstack.processes import wait_until
from shared import keys
from shared.celery_config import create_producer
from shared.config import Settings
from shared.storage import build_object_store
from shared.store import build_job_store
from shared.webhooks import DELIVER_TASK, WebhookMessage, check_url, job_snapshot
from tests.conftest import WEBHOOK_SECRET
from tests.integration.helpers import png_bytes, submit, wait_for_terminal
from worker.webhooks import Attempt, attempt_delivery

pytestmark = pytest.mark.integration

TINY = {"steps": "4", "max_dim": "32", "preset": "balanced"}


class RecordingServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that notes the peer of every connection it accepts, before reading a request."""

    def __init__(self, address, handler, connections: list) -> None:
        self._connections = connections
        super().__init__(address, handler)

    def verify_request(self, request, client_address) -> bool:
        self._connections.append(client_address)
        return True


class Receiver:
    """A local webhook endpoint: answers the scripted statuses in order, then 200; records every connection
    and request (and, over TLS, the server name each client asked for)."""

    def __init__(self, statuses: tuple[int, ...] = (), *, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.connections: list[tuple[str, int]] = []
        self.hosts: list[str | None] = []
        self.server_names: list[str | None] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self._server = RecordingServer(("127.0.0.1", 0), self._handler(), self.connections)
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    receiver.received.append((dict(self.headers), body, status))
                    receiver.hosts.append(self.headers.get("host"))
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

    def make(*statuses: int, tls: ssl.SSLContext | None = None) -> Receiver:
        receivers.append(Receiver(statuses, tls=tls))
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
    content_key = keys.input_object_key("anonymous", hashlib.sha256(content).hexdigest(), "png")
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


# Delivery connects to the address it checked: real local receivers, a scripted resolver, no stack needed.

# A global address (example.com's, as in the unit tests) on the receiver's random port: nothing answers.
# The documentation ranges (203.0.113.0/24, TEST-NET-3) will not do: Python counts them private.
PUBLIC = "93.184.216.34"
PIN_SETTINGS = Settings(webhook_secret=WEBHOOK_SECRET, webhook_timeout_s=0.5)


class Rebinder:
    """The attacker's name server: answers `first` to the first lookup and `then` to every later one."""

    def __init__(self, first: str, then: str) -> None:
        self.first, self.then = first, then
        self.lookups: list[str] = []

    def __call__(self, host, port, **_) -> list:
        self.lookups.append(host)
        address = self.first if len(self.lookups) == 1 else self.then
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


_connect_log: list[list] = []


def _record_connects(event: str, args: tuple) -> None:
    if event == "socket.connect" and _connect_log:
        _connect_log[-1].append(args[1])


@pytest.fixture
def connects():
    """Every address a socket in this process is asked to connect to during the test (a sys audit hook)."""
    if not getattr(sys, "_styleforge_connect_hook", False):  # audit hooks cannot be removed: install once
        sys.addaudithook(_record_connects)
        sys._styleforge_connect_hook = True
    _connect_log.append([])
    yield _connect_log[-1]
    _connect_log.pop()


def message() -> WebhookMessage:
    return WebhookMessage.build("unused", "start", {"id": "p" * 32})


def deliver(url: str, settings: Settings = PIN_SETTINGS, **ports) -> Attempt:
    sent = message()
    return attempt_delivery(url, sent.msg_id, sent.body, settings, **ports)


def test_a_host_rebound_to_loopback_after_the_check_is_never_connected_to_at_loopback(
    receiver_factory, connects
):
    receiver = receiver_factory()
    # The system resolver sends `localhost` to the receiver: a request that resolved again would land there.
    assert "127.0.0.1" in {info[4][0] for info in socket.getaddrinfo("localhost", receiver.port)}
    rebinder = Rebinder(PUBLIC, "127.0.0.1")

    outcome = deliver(f"http://localhost:{receiver.port}/hook", resolve=rebinder)

    assert outcome == Attempt(status=None)  # no answer from the unroutable public address: retried later
    assert rebinder.lookups == ["localhost"]
    assert [address[0] for address in connects] == [PUBLIC]
    assert connects[0][1] == receiver.port
    assert receiver.connections == [] and receiver.received == []


def test_a_host_that_resolves_to_loopback_at_delivery_is_refused_for_good_without_connecting(
    receiver_factory, connects, caplog
):
    receiver = receiver_factory()
    url = f"http://hooks.example.com:{receiver.port}/hook"
    rebinder = Rebinder(PUBLIC, "127.0.0.1")
    check_url(url, allowlist="", resolve=rebinder)  # at submission: public

    with caplog.at_level(logging.WARNING, logger="styleforge.webhooks"):
        outcome = deliver(url, resolve=rebinder)

    assert outcome == Attempt(refused=True)
    assert connects == [] and receiver.connections == []
    assert "dropped for good, nothing sent" in caplog.text
    assert "resolves to 127.0.0.1, a loopback address" in caplog.text
    assert "STYLEFORGE_WEBHOOK_ALLOWLIST" in caplog.text


def test_an_allowlisted_host_is_delivered_at_its_pinned_address_with_its_own_host_header(
    receiver_factory, connects
):
    receiver = receiver_factory(202)
    settings = Settings(**{**PIN_SETTINGS.__dict__, "webhook_allowlist": "hooks.test"})

    outcome = deliver(
        f"http://hooks.test:{receiver.port}/hook", settings, resolve=Rebinder("127.0.0.1", "10.9.9.9")
    )

    assert outcome == Attempt(status=202)
    assert connects == [("127.0.0.1", receiver.port)]
    ((headers, body, _),) = receiver.received
    assert receiver.hosts == [f"hooks.test:{receiver.port}"]
    assert verified(headers, body)["type"] == "job.started"


def test_when_a_checked_address_refuses_the_connection_the_next_checked_address_is_tried(
    receiver_factory, connects
):
    receiver = receiver_factory()  # listens on 127.0.0.1 only, so 127.0.0.2 refuses
    settings = Settings(**{**PIN_SETTINGS.__dict__, "webhook_allowlist": "hooks.test"})

    def two_addresses(host, port, **_) -> list:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in ("127.0.0.2", "127.0.0.1")]

    outcome = deliver(f"http://hooks.test:{receiver.port}/hook", settings, resolve=two_addresses)

    assert outcome == Attempt(status=200)
    assert connects == [("127.0.0.2", receiver.port), ("127.0.0.1", receiver.port)]
    assert len(receiver.received) == 1


def tls_files(tmp_path, *, names: list[str], ips: list[str] = ()) -> tuple[ssl.SSLContext, str]:
    """A self-signed certificate for these names and IPs: the server TLS context, and the CA file to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "styleforge test receiver")])
    sans = [x509.DNSName(name) for name in names] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)


def test_https_to_a_pinned_address_sends_sni_and_verifies_the_certificate_for_the_hostname(
    receiver_factory, tmp_path
):
    context, ca_file = tls_files(tmp_path, names=["hooks.test"])
    receiver = receiver_factory(tls=context)
    settings = Settings(**{**PIN_SETTINGS.__dict__, "webhook_allowlist": "hooks.test"})

    outcome = deliver(
        f"https://hooks.test:{receiver.port}/hook",
        settings,
        resolve=Rebinder("127.0.0.1", "10.9.9.9"),
        verify=ca_file,
    )

    assert outcome == Attempt(status=200)
    assert receiver.server_names == ["hooks.test"]
    assert receiver.hosts == [f"hooks.test:{receiver.port}"]


def test_https_refuses_a_certificate_that_names_only_the_pinned_ip_not_the_host(
    receiver_factory, tmp_path, caplog
):
    context, ca_file = tls_files(tmp_path, names=["other.test"], ips=["127.0.0.1"])
    receiver = receiver_factory(tls=context)
    settings = Settings(**{**PIN_SETTINGS.__dict__, "webhook_allowlist": "hooks.test"})

    with caplog.at_level(logging.INFO, logger="styleforge.webhooks"):
        outcome = deliver(
            f"https://hooks.test:{receiver.port}/hook",
            settings,
            resolve=Rebinder("127.0.0.1", "x"),
            verify=ca_file,
        )

    assert outcome == Attempt(status=None)
    assert receiver.received == []
    assert "SSLError" in caplog.text and "hooks.test" in caplog.text
