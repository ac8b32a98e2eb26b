"""Listings of recent jobs and batches (what the web page browses), over real HTTP and Redis."""

import pytest
import redis
import requests

from devstack.processes import ApiServer
from shared import keys
from shared.storage import build_object_store
from tests.integration.helpers import example, png_bytes, submit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def listing_api(stack_settings, redis_server):
    """An API with no worker on its own Redis database and bucket, so the listings hold only this module's."""
    from api import create_app

    settings = stack_settings.override(redis_url=redis_server.url(4), s3_bucket="sf-listing")
    build_object_store(settings).ensure_bucket()
    server = ApiServer(create_app(settings))
    yield server, redis.Redis.from_url(settings.redis_url, decode_responses=True)
    server.stop()


def test_jobs_are_listed_newest_first_without_batch_items_and_expired_ones_leave(listing_api):
    server, client = listing_api
    ids = [
        submit(
            server.url, content=png_bytes(40, 30, (i * 40, 20, 20)), style=example("style"), steps="1"
        ).json()["id"]
        for i in range(3)
    ]
    files = [("content", ("a/one.png", png_bytes(40, 30))), ("style", ("s.jpg", example("style")))]
    batch_id = requests.post(f"{server.url}/v1/batches", files=files, timeout=30).json()["id"]

    listed = requests.get(f"{server.url}/v1/jobs?limit=10", timeout=10).json()["jobs"]
    assert [job["id"] for job in listed] == ids[::-1]
    assert all(job["batch_id"] is None for job in listed)
    two = requests.get(f"{server.url}/v1/jobs?limit=2", timeout=10).json()["jobs"]
    assert [job["id"] for job in two] == ids[:0:-1]

    batches = requests.get(f"{server.url}/v1/batches", timeout=10).json()["batches"]
    assert [(batch["id"], batch["items_total"], batch["thumbnail"]) for batch in batches] == [
        (batch_id, 1, None)
    ]

    client.delete(keys.job_key(ids[1]))  # as if its TTL ran out
    listed = requests.get(f"{server.url}/v1/jobs", timeout=10).json()["jobs"]
    assert [job["id"] for job in listed] == [ids[2], ids[0]]
    assert client.zscore(keys.recent_jobs_key("anonymous"), ids[1]) is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=-1"])
def test_a_bad_listing_limit_answers_400_naming_it(listing_api, query):
    server, _ = listing_api
    for path in ("/v1/jobs", "/v1/batches"):
        response = requests.get(f"{server.url}{path}?{query}", timeout=10)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == "limit"
