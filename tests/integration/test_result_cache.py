"""The result cache over real HTTP, Redis, S3 and the real worker (issue 15 part 3): a job whose key has a
stored result succeeds at once with `cached: true` and the same bytes; `cache=false`, other params, an expired
object or another tenant compute.

The harness's stack runs with STYLEFORGE_RESULT_CACHE off (the other suites rerun identical jobs and check
how each ran), so these tests use an API of their own with the deployment default, on, before the session's
worker, and one test checks the session's `api`, where only an explicit `cache=true` caches."""

import random
import uuid

import pytest
import requests

from devstack.processes import ApiServer, wait_until
from shared.api_keys import KeyStore
from shared.storage import build_object_store
from shared.store import connect_redis
from tests.fixtures.badimages import noise_png
from tests.integration.helpers import submit

pytestmark = pytest.mark.integration

TINY = {"preset": "seed", "steps": "2", "max_dim": "40"}
TIMEOUT_S = 240  # the shared worker may still be loading VGG19 or running other tests' jobs


def fresh_images() -> tuple[bytes, bytes]:
    """A content and a style no other job of the session used, so the first job of a test computes."""
    seed = random.SystemRandom().randrange(1 << 30)
    return noise_png(44, 36, seed=seed), noise_png(40, 40, seed=seed + 1)


def run_job(base: str, content: bytes, style: bytes, *, headers: dict | None = None, **form: str) -> dict:
    """Submit a job (with a tenant's ``headers``, if given) and wait for it to end; its JSON, succeeded."""
    files = {"content": ("c.png", content), "style": ("s.png", style)}
    response = requests.post(
        f"{base}/v1/jobs", files=files, data={**TINY, **form}, headers=headers or {}, timeout=30
    )
    assert response.status_code == 202, response.text
    job = wait_for_job(base, response.json()["id"], headers or {})
    assert job["status"] == "succeeded", job
    return job


def wait_for_job(base: str, job_id: str, headers: dict) -> dict:
    found = {}

    def done() -> bool:
        found.update(requests.get(f"{base}/v1/jobs/{job_id}", headers=headers, timeout=10).json())
        return found["status"] in ("succeeded", "failed", "canceled")

    wait_until(done, timeout=TIMEOUT_S, what=f"job {job_id} to end", interval=0.3)
    return found


def result_bytes(job: dict) -> bytes:
    response = requests.get(job["result"]["url"], timeout=30)
    assert response.status_code == 200
    return response.content


@pytest.fixture(scope="module")
def cached_api(stack_settings, worker):
    """An open-mode API with the result cache on by default, as deployed, before the session's worker."""
    from api import create_app

    server = ApiServer(create_app(stack_settings.override(result_cache=True)))
    yield server
    server.stop()


def test_the_same_job_again_is_cached_with_the_same_bytes_under_its_own_key(cached_api):
    content, style = fresh_images()
    first = run_job(cached_api.url, content, style)
    second = run_job(cached_api.url, content, style)
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["evaluations"] > 0 and second["evaluations"] == 0  # no optimisation ran
    assert second["progress"]["fraction"] == 1.0 and second["steps"] == []
    assert second["cache_key"] == first["cache_key"] and second["engine_version"] == first["engine_version"]
    assert second["result"]["key"] != first["result"]["key"] and second["id"] in second["result"]["key"]
    assert (second["result"]["width"], second["result"]["height"]) == (
        first["result"]["width"],
        first["result"]["height"],
    )
    assert result_bytes(second) == result_bytes(first)


def test_cache_false_and_other_params_compute(cached_api):
    base, (content, style) = cached_api.url, fresh_images()
    first = run_job(base, content, style)
    opted_out = run_job(base, content, style, cache="false")
    other_params = run_job(base, content, style, seed="7", init="noise")
    assert not opted_out["cache"] and opted_out["cached"] is False and opted_out["evaluations"] > 0
    assert other_params["cached"] is False and other_params["cache_key"] != first["cache_key"]
    assert run_job(base, content, style)["cached"] is True  # the control: the cache was there


def test_where_the_deployment_turns_the_cache_off_only_cache_true_uses_it(api):
    content, style = fresh_images()
    plain = [run_job(api.url, content, style) for _ in range(2)]
    assert [job["cache"] for job in plain] == [False, False] and not any(job["cached"] for job in plain)
    first = run_job(api.url, content, style, cache="true")
    assert not first["cached"] and run_job(api.url, content, style, cache="1")["cached"]


def test_a_bad_cache_flag_answers_400_naming_it(cached_api):
    content, style = fresh_images()
    response = submit(cached_api.url, content=content, style=style, cache="maybe", **TINY)
    assert response.status_code == 400 and response.json()["error"]["field"] == "cache"


def test_a_result_whose_object_expired_is_recomputed_not_half_served(cached_api, stack_settings):
    base, (content, style) = cached_api.url, fresh_images()
    first = run_job(base, content, style)
    build_object_store(stack_settings).delete(first["result"]["key"])
    again = run_job(base, content, style)
    assert again["cached"] is False and again["evaluations"] > 0
    assert requests.get(again["result"]["url"], timeout=30).status_code == 200
    assert run_job(base, content, style)["cached"] is True  # the entry now names the recomputed result


def post_batch(base: str, content: bytes, style: bytes, **form: str) -> dict:
    files = [("content", (f"set/{n}.png", noise_png(36, 32, seed=n))) for n in range(2)]
    files += [("content", ("hero.png", content)), ("style", ("s.png", style))]
    response = requests.post(f"{base}/v1/batches", files=files, data={**TINY, **form}, timeout=60)
    assert response.status_code == 202, response.text
    return response.json()


def wait_for_batch(base: str, batch_id: str) -> dict:
    found = {}

    def done() -> bool:
        found.update(requests.get(f"{base}/v1/batches/{batch_id}?limit=100", timeout=10).json())
        return found["counts"]["queued"] + found["counts"]["running"] == 0

    wait_until(done, timeout=TIMEOUT_S, what=f"batch {batch_id} to finish", interval=0.3)
    return found


def test_a_batch_submitted_again_is_all_cached_and_its_counts_say_so(cached_api):
    base, (content, style) = cached_api.url, fresh_images()
    first = wait_for_batch(base, post_batch(base, content, style)["id"])
    again = wait_for_batch(base, post_batch(base, content, style)["id"])
    assert first["counts"]["succeeded"] == again["counts"]["succeeded"] == 3
    assert (first["counts"]["cached"], again["counts"]["cached"]) == (0, 3)
    assert all(item["cached"] for item in again["items"]) and again["status"] == "succeeded"
    opted_out = wait_for_batch(base, post_batch(base, content, style, cache="false")["id"])
    assert opted_out["cache"] is False and opted_out["counts"]["cached"] == 0
    assert not any(item["cached"] for item in opted_out["items"])


def test_a_cached_batch_item_still_writes_its_output_copy_and_the_manifest(cached_api, stack_settings):
    base, (content, style) = cached_api.url, fresh_images()
    wait_for_batch(base, post_batch(base, content, style)["id"])  # computes, and records the entries
    prefix = f"builds/{uuid.uuid4().hex[:8]}/"
    again = wait_for_batch(base, post_batch(base, content, style, output_prefix=prefix)["id"])
    assert again["counts"]["cached"] == 3, again["counts"]
    objects = build_object_store(stack_settings)
    root = f"tenants/anonymous/{prefix}"
    wait_until(
        lambda: again["id"] and objects.exists(root + "manifest.json"), timeout=30, what="the manifest"
    )
    listed = sorted(key[len(root) :] for key in objects.list_keys(root, 100))
    assert listed == ["hero.png", "manifest.json", "set/0.png", "set/1.png"], listed
    for item in again["items"]:  # the copy is the item's result, byte for byte
        assert objects.get(root + item["path"]) == objects.get(item["result"]["key"])


@pytest.fixture(scope="module")
def tenants(stack_settings, worker):
    """Two tenants' headers (fresh names each run) on a required-mode API before the session's worker."""
    from api import create_app

    settings = stack_settings.override(auth="required", result_cache=True)
    server = ApiServer(create_app(settings))
    store = KeyStore(client=connect_redis(settings.redis_url))
    run = uuid.uuid4().hex[:8]
    made = {name: store.create(f"cache-{name}-{run}").key for name in ("a", "b")}
    yield server.url, {name: {"Authorization": f"Bearer {key}"} for name, key in made.items()}
    server.stop()


def test_another_tenant_with_the_same_images_and_params_never_hits(tenants):
    base, headers = tenants
    content, style = fresh_images()
    run_job(base, content, style, headers=headers["a"])
    other = run_job(base, content, style, headers=headers["b"])
    assert other["cached"] is False and other["evaluations"] > 0
    assert run_job(base, content, style, headers=headers["a"])["cached"] is True  # the control
