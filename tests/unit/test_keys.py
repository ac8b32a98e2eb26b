"""Every Redis key and object key is pinned to its exact string."""

import pytest

from shared import keys

pytestmark = pytest.mark.unit


def test_redis_keys_have_the_documented_exact_form():
    assert keys.job_key("abc") == "sf:job:abc"
    assert keys.job_events_key("abc") == "sf:job:abc:events"
    assert keys.job_steps_key("abc") == "sf:job:abc:steps"
    assert keys.batch_key("b1") == "sf:batch:b1"
    assert keys.batch_jobs_key("b1") == "sf:batch:b1:jobs"
    assert keys.batch_events_key("b1") == "sf:batch:b1:events"
    assert keys.idempotency_key("k") == "sf:idem:k"


def test_fair_share_keys_have_the_documented_exact_form():
    assert keys.fair_held_key("studio-a") == "sf:fair:studio-a:held"
    assert keys.fair_released_key("studio-a") == "sf:fair:studio-a:released"
    assert keys.fair_tenants_key() == "sf:fair:tenants"


def test_object_keys_follow_the_bucket_layout():
    assert keys.input_object_key("ff00", "png") == "inputs/ff00.png"
    assert keys.result_object_key("abc") == "jobs/abc/result.png"
    assert keys.step_object_key("abc", 42) == "jobs/abc/steps/000042.png"


def test_queues_put_interactive_before_bulk():
    assert keys.GPU_QUEUES == ("interactive", "bulk")


def test_rate_limit_and_quota_keys_have_their_exact_form():
    assert keys.rate_limit_prefix() == "sf:ratelimit"
    assert keys.quota_key("studio-a") == "sf:quota:studio-a"
    assert keys.active_jobs_key("studio-a") == "sf:usage:studio-a:active"
    assert keys.items_per_day_key("studio-a", "2026-12-02") == "sf:usage:studio-a:items:2026-12-02"
