"""API keys against the real thing: the API over HTTP in required mode, a real redis-server and S3 server, and
the real `styleforge keys` command as a subprocess (issue 14, done-when 2)."""

import os
import subprocess
import sys

import pytest
import requests

from devstack.processes import REPO, ApiServer
from shared.store import connect_redis
from tests.integration.helpers import example

pytestmark = pytest.mark.integration

DB = 11  # a database of its own: no worker takes these jobs, and the at-rest scan reads only this test's data


@pytest.fixture(scope="module")
def keyed(stack_settings, redis_server):
    """The API in required mode (no worker behind it: the checks end at the queue) and its Redis."""
    from api import create_app
    from shared.storage import build_object_store

    settings = stack_settings.override(auth="required", redis_url=redis_server.url(DB), s3_bucket="sf-keys")
    build_object_store(settings).ensure_bucket()
    server = ApiServer(create_app(settings))
    client = connect_redis(settings.redis_url)
    client.flushdb()
    yield server, client, settings
    server.stop()


def keys_cli(settings, *argv: str) -> subprocess.CompletedProcess:
    """The real `styleforge keys ...`, in its own process, with only the Redis URL from the settings."""
    env = {**os.environ, "STYLEFORGE_REDIS_URL": settings.redis_url}
    return subprocess.run(
        [sys.executable, "-m", "client.cli", "keys", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_key(settings, tenant: str) -> str:
    made = keys_cli(settings, "create", "--tenant", tenant)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def post_job(base: str, headers: dict[str, str] | None = None) -> requests.Response:
    files = {"content": ("c.png", example("content")), "style": ("s.png", example("style"))}
    data = {"preset": "seed", "steps": "2", "max_dim": "32"}
    return requests.post(f"{base}/v1/jobs", files=files, data=data, headers=headers or {}, timeout=30)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_401(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["field"] == "authorization"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_no_malformed_unknown_wrong_and_revoked_keys_get_401_and_a_valid_one_owns_its_job(keyed):
    server, _, settings = keyed
    key = create_key(settings, "studio-a")
    key_id, secret = key.split("_", 2)[1:]
    wrong_secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    assert_401(post_job(server.url))
    assert_401(post_job(server.url, {"Authorization": "Bearer sf_nope"}))
    assert_401(post_job(server.url, {"Authorization": f"Basic {key}"}))
    assert_401(post_job(server.url, bearer(f"sf_{'0' * 12}_{secret}")))
    assert_401(post_job(server.url, bearer(f"sf_{key_id}_{wrong_secret}")))
    accepted = post_job(server.url, bearer(key))
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    job = requests.get(f"{server.url}/v1/jobs/{job_id}", headers=bearer(key), timeout=10)
    assert job.status_code == 200 and job.json()["owner"] == "studio-a"
    assert_401(requests.get(f"{server.url}/v1/jobs/{job_id}", timeout=10))
    assert_401(requests.get(f"{server.url}/v1/jobs/{job_id}/events", timeout=10))
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200

    revoked = keys_cli(settings, "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert_401(requests.get(f"{server.url}/v1/jobs/{job_id}", headers=bearer(key), timeout=10))
    assert_401(post_job(server.url, bearer(key)))


def test_a_batch_and_its_items_are_owned_by_the_key_s_tenant(keyed):
    server, client, settings = keyed
    key = create_key(settings, "studio-b")
    files = [("content", ("a/c.png", example("content"))), ("style", ("s.png", example("style")))]
    data = {"preset": "seed", "steps": "2", "max_dim": "32"}

    response = requests.post(
        f"{server.url}/v1/batches", files=files, data=data, headers=bearer(key), timeout=30
    )

    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]
    item_ids = client.lrange(f"sf:batch:{batch_id}:jobs", 0, -1)
    assert client.hget(f"sf:batch:{batch_id}", "owner") == "studio-b"
    assert item_ids and {client.hget(f"sf:job:{item}", "owner") for item in item_ids} == {"studio-b"}


def test_keys_list_shows_ids_tenants_and_revocations_and_a_bad_tenant_is_refused(keyed):
    _, _, settings = keyed
    key = create_key(settings, "studio-c")
    key_id, secret = key.split("_", 2)[1:]
    keys_cli(settings, "revoke", key_id)

    listing = keys_cli(settings, "list")
    refused = keys_cli(settings, "create", "--tenant", "Bad_Name")
    unknown = keys_cli(settings, "revoke", "ffffffffffff")

    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith(key_id))
    assert "studio-c" in row and row.split()[-1].endswith("Z")
    assert secret not in listing.stdout + listing.stderr
    assert refused.returncode == 2 and "a-z, 0-9 and '-'" in refused.stderr
    assert unknown.returncode == 2 and "no API key" in unknown.stderr


def test_keys_are_hashed_at_rest_no_secret_appears_anywhere_in_redis(keyed):
    server, client, settings = keyed
    made = [create_key(settings, f"tenant-{n}") for n in range(3)]
    for key in made:  # used too, so whatever the API writes per request is in the scan
        assert post_job(server.url, bearer(key)).status_code == 202
    secrets_ = [key.split("_", 2)[2] for key in made]

    dump = []
    for name in client.scan_iter(count=1000):
        dump.append(name)
        kind = client.type(name)
        if kind == "string":
            dump.append(client.get(name) or "")
        elif kind == "hash":
            dump += [f"{field}={value}" for field, value in client.hgetall(name).items()]
        elif kind == "list":
            dump += client.lrange(name, 0, -1)
        elif kind in ("set",):
            dump += list(client.smembers(name))
        elif kind == "zset":
            dump += client.zrange(name, 0, -1)
        elif kind == "stream":
            dump += [repr(entry) for entry in client.xrange(name)]
        else:
            pytest.fail(f"unexpected Redis type {kind} at {name}")
    text = "\n".join(dump)

    assert any(name.startswith("sf:apikey:") for name in dump)
    for key, secret in zip(made, secrets_, strict=True):
        assert secret not in text and key not in text
        assert secret[:16] not in text  # not even a part of it
