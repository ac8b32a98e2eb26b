"""Tenant isolation over fakes: the owner check's one answer, and where a tenant's uploads are stored (the
BOLA suite, tests/integration/test_bola.py, checks every route against the real stack)."""

import uuid

import pytest

from shared import keys
from shared.api_keys import KeyStore
from tests.unit.test_api_keys import HashRedis, bearer, make_client, post_job

pytestmark = pytest.mark.unit


@pytest.fixture
def two_tenants():
    store = KeyStore(client=HashRedis())
    a, b = store.create("studio-a"), store.create("studio-b")
    client, services = make_client("required", store)
    return client, services, bearer(a.key), bearer(b.key)


def test_another_tenant_s_job_answers_exactly_as_a_missing_one_and_its_cancel_changes_nothing(two_tenants):
    client, services, a, b = two_tenants
    job_id = post_job(client, a).get_json()["id"]
    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("GET", "/events")):
        missing = client.open(f"/v1/jobs/{uuid.uuid4().hex}{suffix}", method=method, headers=b)
        foreign = client.open(f"/v1/jobs/{job_id}{suffix}", method=method, headers=b)
        assert (foreign.status_code, foreign.data) == (404, missing.data), (method, suffix)
        assert job_id.encode() not in foreign.data and b"studio-a" not in foreign.data
    assert services.store.get(job_id).status.value == "queued"
    assert client.get(f"/v1/jobs/{job_id}", headers=a).status_code == 200


def test_each_tenant_s_uploads_live_under_its_own_root_even_for_the_same_bytes(two_tenants):
    client, services, a, b = two_tenants
    first, second = post_job(client, a).get_json()["id"], post_job(client, b).get_json()["id"]
    content_a, content_b = services.store.get(first).content_key, services.store.get(second).content_key
    assert content_a.startswith(keys.tenant_prefix("studio-a") + "inputs/")
    assert content_b == content_a.replace("tenants/studio-a/", "tenants/studio-b/")
    assert set(services.objects.objects) >= {content_a, content_b}


def test_ids_from_requests_are_loaded_only_through_the_owner_check():
    from pathlib import Path

    api = Path(__file__).resolve().parents[2] / "api"
    callers = sorted(str(p.relative_to(api)) for p in api.rglob("*.py") if "checked_id(" in p.read_text())
    assert callers == ["args.py", "usecases/owner.py"]
