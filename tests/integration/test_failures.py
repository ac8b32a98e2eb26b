"""A job that fails inside the worker is marked failed with a reason, and the worker goes on."""

import time
import uuid

import pytest

from shared import keys
from shared.celery_config import create_producer
from shared.jobs import JobRecord, JobStatus
from shared.params import StyleParams
from shared.plan import plan_levels
from shared.queue import CeleryJobQueue
from shared.store import JobStore, connect_redis
from tests.integration.helpers import example, submit, wait_for_terminal

pytestmark = pytest.mark.integration


def test_job_whose_input_vanished_fails_with_a_reason_and_the_next_job_still_succeeds(api, stack_settings):
    store = JobStore(client=connect_redis(stack_settings.redis_url), ttl_s=600, events_maxlen=100)
    record = JobRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.QUEUED,
        params=StyleParams.from_mapping({"steps": 2, "max_dim": 32}),
        content_key=keys.input_object_key("anonymous", "0" * 64, "png"),
        style_keys=(keys.input_object_key("anonymous", "1" * 64, "png"),),
        created_at=time.time(),
        total_steps=2,
        plan=plan_levels(32, 32, max_dim=32, levels=1, steps=2).to_dict(),
    )
    store.create(record)
    CeleryJobQueue(celery=create_producer(stack_settings)).enqueue(record.id, queue=keys.INTERACTIVE_QUEUE)
    failed = wait_for_terminal(api.url, record.id)
    assert failed["status"] == "failed"
    assert record.content_key in failed["error"]
    after = submit(api.url, content=example("content"), style=example("style"), steps="2", max_dim="32")
    assert wait_for_terminal(api.url, after.json()["id"])["status"] == "succeeded"
