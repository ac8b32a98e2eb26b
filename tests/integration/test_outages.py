"""Faults over real HTTP: Redis stopped and restarted under a running API; oversize bodies cut off early."""

import contextlib
import gc
import json
import select
import socket
import time

import pytest
import redis
import requests

from devstack.processes import ApiServer, RedisServer
from shared import keys
from tests.integration.helpers import example

pytestmark = pytest.mark.integration

JOB_ID = "0" * 32
# An outage is answered well inside a client's patience: redis-py gives up on a refused connection at once.
ANSWER_WITHIN_S = 6.0


@pytest.fixture
def outage(stack_settings, tmp_path):
    """An API on its own restartable Redis (and bucket), with no worker: jobs stay queued."""
    from api import create_app

    server = RedisServer(tmp_path)
    api = ApiServer(create_app(stack_settings.override(redis_url=server.url(), s3_bucket="sf-outage")))
    yield api, server
    api.stop()
    server.stop()


def images() -> list:
    return [("content", ("c.png", example("content"))), ("style", ("s.jpg", example("style")))]


# (method, path, sends images, status once Redis is back): every route that reads or writes Redis.
CALLS = [
    ("GET", f"/v1/jobs/{JOB_ID}", False, 404),
    ("GET", "/v1/jobs", False, 200),
    ("POST", f"/v1/jobs/{JOB_ID}/cancel", False, 404),
    ("GET", f"/v1/jobs/{JOB_ID}/events", False, 404),
    ("GET", f"/v1/batches/{JOB_ID}", False, 404),
    ("GET", "/v1/batches", False, 200),
    ("POST", "/v1/jobs", True, 202),
    ("POST", "/v1/batches", True, 202),
]


def call(api: ApiServer, method: str, path: str, with_images: bool) -> tuple[requests.Response, float]:
    form = {"max_dim": "32", "steps": "1"} if with_images else None
    start = time.monotonic()
    response = requests.request(
        method, api.url + path, files=images() if with_images else None, data=form, timeout=30
    )
    return response, time.monotonic() - start


def assert_unavailable(api: ApiServer) -> float:
    """Every Redis-backed call answers 503 JSON in time; returns the slowest answer's seconds."""
    slowest = 0.0
    for method, path, with_images, _ in CALLS:
        response, seconds = call(api, method, path, with_images)
        assert response.status_code == 503, f"{method} {path}: {response.status_code} {response.text}"
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("unavailable", None) and "Redis" in error["message"]
        assert response.headers["Retry-After"] and seconds < ANSWER_WITHIN_S, (
            f"{method} {path}: {seconds:.2f} s"
        )
        slowest = max(slowest, seconds)
    return slowest


def assert_working(api: ApiServer) -> None:
    for method, path, with_images, status in CALLS:
        response, _ = call(api, method, path, with_images)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"


def test_api_answers_503_while_redis_is_down_and_recovers_when_it_returns(outage):
    api, server = outage
    assert_working(api)
    slowest = 0.0
    for _ in range(2):  # a second outage proves the first recovery left nothing stale behind
        server.stop()
        slowest = max(slowest, assert_unavailable(api))
        assert requests.get(api.url + "/healthz", timeout=5).status_code == 200
        ready = requests.get(api.url + "/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("error")
        server.start()
        assert_working(api)
    print(f"slowest 503 answer during the outage: {slowest:.3f} s")


def test_jobs_submitted_after_redis_returns_are_queued_for_workers(outage):
    api, server = outage
    server.stop()
    assert call(api, "POST", "/v1/jobs", True)[0].status_code == 503
    server.start()
    response, _ = call(api, "POST", "/v1/jobs", True)
    assert response.status_code == 202
    with redis.Redis.from_url(server.url()) as client:
        assert client.llen(keys.INTERACTIVE_QUEUE) == 1
    assert requests.get(f"{api.url}/v1/jobs/{response.json()['id']}", timeout=10).json()["status"] == "queued"


# Oversize bodies: 413 from the declared length, or as soon as a chunked body passes the limit.

LIMIT = 1024 * 1024
PART = (
    b'--b\r\nContent-Disposition: form-data; name="content"; filename="c.png"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)


@pytest.fixture(scope="module")
def small_api(stack_settings):
    from api import create_app

    api = ApiServer(create_app(stack_settings.override(s3_bucket="sf-outage", max_upload_bytes=LIMIT)))
    yield api
    api.stop()


def open_upload(port: int, length_header: str) -> socket.socket:
    """A raw POST /v1/jobs whose headers are sent and whose body is the caller's to send."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    content_type = "Content-Type: multipart/form-data; boundary=b"
    sock.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n{content_type}\r\n{length_header}\r\n\r\n".encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the answer, read by its Content-Length while the upload is still unfinished."""
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    headers = dict(line.decode().rstrip("\r\n").split(": ", 1) for line in iter(reader.readline, b"\r\n"))
    return status, json.loads(reader.read(int(headers["Content-Length"])))


def hang_up(sock: socket.socket) -> None:
    """End the upload and wait for the server to close (the dev server drains what was sent, then closes)."""
    sock.shutdown(socket.SHUT_WR)
    with contextlib.suppress(ConnectionResetError):
        while sock.recv(65536):
            pass
    sock.close()
    time.sleep(
        0.2
    )  # the handler thread drops the request's spooled part file: let that happen inside this test
    gc.collect()


def test_a_declared_length_over_the_limit_is_answered_413_without_reading_the_body(small_api):
    sock = open_upload(small_api.port, f"Content-Length: {1024**3}")
    start = time.monotonic()
    sock.sendall(PART + b"\0" * 1024)  # the other ~1 GiB never comes: reading it would hang until timeout
    status, body = read_response(sock)
    seconds = time.monotonic() - start
    hang_up(sock)
    assert status == 413 and body["error"]["code"] == "too_large"
    assert seconds < 2
    assert requests.get(small_api.url + "/healthz", timeout=5).status_code == 200


# Werkzeug's multipart parser leaves the part's spooled temp file to the garbage collector when the limit
# cuts its read short; the file is closed then, with a ResourceWarning that is not this test's to fail on.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_chunked_body_with_no_length_is_cut_off_with_413_once_past_the_limit(small_api):
    sock = open_upload(small_api.port, "Transfer-Encoding: chunked")
    sent = 0
    for chunk in [PART] + [b"\0" * 65536] * (8 * LIMIT // 65536):
        if select.select([sock], [], [], 0)[0]:
            break  # the answer came before the body ended
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sent += len(chunk)
    status, body = read_response(sock)  # no final chunk was sent: only the limit can have ended the read
    hang_up(sock)
    assert status == 413 and body["error"]["code"] == "too_large"
    assert LIMIT < sent < 8 * LIMIT
    assert requests.get(small_api.url + "/healthz", timeout=5).status_code == 200
