"""Cancel, intermediate images and idempotent creates, over the real stack."""

import time

import pytest
import redis
import requests

from devstack.processes import ApiServer, wait_until
from shared import keys
from shared.storage import build_object_store
from tests.integration.helpers import example, submit, wait_for_terminal

pytestmark = pytest.mark.integration

LONG = {"steps": "200", "max_dim": "32", "preset": "balanced"}


def job(base_url: str, job_id: str) -> dict:
    return requests.get(f"{base_url}/v1/jobs/{job_id}", timeout=10).json()


def cancel(base_url: str, job_id: str) -> requests.Response:
    return requests.post(f"{base_url}/v1/jobs/{job_id}/cancel", timeout=10)


def test_a_running_job_cancels_within_moments_and_keeps_its_last_intermediate_image(api):
    job_id = submit(
        api.url, content=example("content"), style=example("style"), save_every="5", **LONG
    ).json()["id"]
    wait_until(lambda: job(api.url, job_id)["progress"]["step"] >= 6, timeout=60, what="the job to run")
    requested = time.monotonic()
    assert cancel(api.url, job_id).status_code == 202
    final = wait_for_terminal(api.url, job_id, timeout=30)
    assert final["status"] == "canceled"
    assert time.monotonic() - requested < 5
    assert final["progress"]["step"] < 200
    assert final["steps"] and final["steps"][-1]["step"] == final["progress"]["step"]
    snapshot = requests.get(final["steps"][-1]["url"], timeout=10)
    assert snapshot.content[:4] == b"\x89PNG"
    assert "Content-Disposition" not in snapshot.headers  # shown in the page's <img>, never a download
    assert cancel(api.url, job_id).status_code == 409


def test_a_canceled_queued_job_is_never_started(api):
    blocker = submit(api.url, content=example("content"), style=example("style"), **LONG).json()["id"]
    wait_until(lambda: job(api.url, blocker)["status"] == "running", timeout=60, what="the blocker to run")
    queued = submit(api.url, content=example("content"), style=example("style"), steps="2", max_dim="32")
    response = cancel(api.url, queued.json()["id"])
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    cancel(api.url, blocker)
    wait_for_terminal(api.url, blocker, timeout=30)
    after = submit(api.url, content=example("content"), style=example("style"), steps="1", max_dim="32")
    wait_for_terminal(api.url, after.json()["id"])  # the worker has drained everything queued before it
    skipped = job(api.url, queued.json()["id"])
    assert skipped["status"] == "canceled" and skipped["started_at"] is None and skipped["attempt"] == 0


def test_intermediate_images_are_listed_with_urls(api):
    job_id = submit(
        api.url, content=example("content"), style=example("style"), steps="6", max_dim="32", save_every="2"
    ).json()["id"]
    final = wait_for_terminal(api.url, job_id)
    assert [entry["step"] for entry in final["steps"]] == [2, 4, 6]


@pytest.fixture(scope="module")
def quiet_api(stack_settings, redis_server):
    """An API with no worker on its own Redis database, so queue entries stay countable."""
    from api import create_app

    settings = stack_settings.override(redis_url=redis_server.url(3), s3_bucket="sf-idem")
    build_object_store(settings).ensure_bucket()
    server = ApiServer(create_app(settings))
    yield server, redis.Redis.from_url(settings.redis_url)
    server.stop()


def test_the_same_idempotency_key_creates_one_job_and_one_queue_entry(quiet_api):
    server, client = quiet_api
    headers = {"Idempotency-Key": "asset-42"}
    files = {"content": ("c.png", example("content")), "style": ("s.jpg", example("style"))}
    first = requests.post(
        f"{server.url}/v1/jobs", files=files, data={"steps": "3"}, headers=headers, timeout=30
    )
    second = requests.post(
        f"{server.url}/v1/jobs", files=files, data={"steps": "3"}, headers=headers, timeout=30
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    jobs = [key for key in client.scan_iter(match=keys.job_key("*")) if key.count(b":") == 2]
    assert len(jobs) == 1 and client.llen(keys.INTERACTIVE_QUEUE) == 1
    other = requests.post(
        f"{server.url}/v1/jobs", files=files, data={"steps": "4"}, headers=headers, timeout=30
    )
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    assert client.llen(keys.INTERACTIVE_QUEUE) == 1
