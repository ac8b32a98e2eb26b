"""Every Redis key and object key is pinned to its exact string."""

import pytest

from shared import keys
from shared.api_keys import TENANT_PATTERN

pytestmark = pytest.mark.unit


def test_redis_keys_have_the_documented_exact_form():
    assert keys.job_key("abc") == "sf:job:abc"
    assert keys.job_events_key("abc") == "sf:job:abc:events"
    assert keys.job_steps_key("abc") == "sf:job:abc:steps"
    assert keys.batch_key("b1") == "sf:batch:b1"
    assert keys.batch_jobs_key("b1") == "sf:batch:b1:jobs"
    assert keys.batch_events_key("b1") == "sf:batch:b1:events"
    assert keys.idempotency_key("acme", "k") == "sf:idem:acme:k"
    assert keys.recent_jobs_key("acme") == "sf:recent:jobs:acme"
    assert keys.recent_batches_key("anonymous") == "sf:recent:batches:anonymous"


def test_fair_share_keys_have_the_documented_exact_form():
    assert keys.fair_held_key("studio-a") == "sf:fair:studio-a:held"
    assert keys.fair_released_key("studio-a") == "sf:fair:studio-a:released"
    assert keys.fair_tenants_key() == "sf:fair:tenants"


def test_object_keys_follow_the_bucket_layout_under_the_tenant():
    assert keys.input_object_key("acme", "ff00", "png") == "tenants/acme/inputs/ff00.png"
    assert keys.result_object_key("acme", "abc") == "tenants/acme/jobs/abc/result.png"
    assert keys.step_object_key("acme", "abc", 42) == "tenants/acme/jobs/abc/steps/000042.png"
    assert keys.checkpoint_object_key("acme", "abc") == "tenants/acme/jobs/abc/checkpoint.npz"
    assert keys.targets_object_key("acme", "t1") == "tenants/acme/targets/t1.npz"


@pytest.mark.parametrize("tenant", ["", "..", "a/b", "a:b", "-a", "A", "tenants/x", None])
def test_a_key_builder_refuses_a_tenant_that_is_not_one_safe_segment(tenant):
    with pytest.raises(ValueError, match="tenant"):
        keys.result_object_key(tenant, "abc")


def test_the_key_builders_admit_exactly_the_tenant_names_keys_are_made_for():
    assert keys.TENANT_SEGMENT.pattern == TENANT_PATTERN.pattern


def test_queues_put_interactive_before_bulk():
    assert keys.GPU_QUEUES == ("interactive", "bulk")


def test_rate_limit_and_quota_keys_have_their_exact_form():
    assert keys.rate_limit_prefix() == "sf:ratelimit"
    assert keys.quota_key("studio-a") == "sf:quota:studio-a"
    assert keys.active_jobs_key("studio-a") == "sf:usage:studio-a:active"
    assert keys.items_per_day_key("studio-a", "2026-12-02") == "sf:usage:studio-a:items:2026-12-02"


def test_output_keys_lie_under_the_tenant_and_the_batchs_output_prefix():
    assert keys.output_object_key("acme", "builds/7/", "a/b.png") == "tenants/acme/builds/7/a/b.png"
    assert keys.manifest_object_key("acme", "builds/7/") == "tenants/acme/builds/7/manifest.json"
    assert keys.pending_manifests_key() == "sf:manifests:pending"
