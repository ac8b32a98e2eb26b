"""Quota rules and the per-tenant active-jobs hook, with fakes (tests/integration/test_limits.py runs them
against the real API and Redis)."""

from datetime import UTC, datetime

import pytest

from shared.active_jobs import ActiveJobsHook
from shared.errors import ParameterCapExceeded, UsageQuotaExceeded
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import Change, Verb
from shared.params import StyleParams
from shared.quotas import Quotas, check_active, check_caps, check_items, seconds_to_next_utc_day

pytestmark = pytest.mark.unit

LIMITS = Quotas(max_active_jobs=3, items_per_day=10, max_dim=512, max_steps=100)


class RecordingPipe:
    """Keeps the commands a hook adds to a transaction."""

    def __init__(self) -> None:
        self.commands: list[tuple] = []

    def sadd(self, key, member):
        self.commands.append(("sadd", key, member))

    def srem(self, key, member):
        self.commands.append(("srem", key, member))


def change(verb: Verb, before: JobStatus | None, after: JobStatus, *, owner="studio-a", record=True):
    job = JobRecord(
        id="j1",
        status=after,
        params=StyleParams.from_mapping({"preset": "seed"}),
        content_key="c",
        style_keys=("s",),
        created_at=0.0,
        owner=owner,
    )
    return Change(verb, "j1", "", before, after, record=job if record else None)


def test_the_hook_adds_a_job_to_its_owner_s_set_while_queued_or_running_and_removes_it_at_its_end():
    pipe, hook = RecordingPipe(), ActiveJobsHook()
    hook.in_transaction(pipe, change(Verb.QUEUE, None, JobStatus.QUEUED, owner="studio-b"))
    hook.in_transaction(pipe, change(Verb.START, JobStatus.QUEUED, JobStatus.RUNNING, owner="studio-b"))
    hook.in_transaction(pipe, change(Verb.REQUEUE, JobStatus.RUNNING, JobStatus.QUEUED, owner="studio-b"))
    hook.in_transaction(pipe, change(Verb.CANCEL, JobStatus.QUEUED, JobStatus.CANCELED, owner="studio-b"))

    key = "sf:usage:studio-b:active"
    assert pipe.commands == [("sadd", key, "j1")] * 3 + [("srem", key, "j1")]


def test_the_hook_writes_nothing_for_progress_or_a_redelivered_start():
    pipe, hook = RecordingPipe(), ActiveJobsHook()
    hook.in_transaction(pipe, change(Verb.PROGRESS, JobStatus.RUNNING, JobStatus.RUNNING, record=False))
    hook.in_transaction(pipe, change(Verb.START, JobStatus.RUNNING, JobStatus.RUNNING))

    assert pipe.commands == []


def test_a_batch_item_failed_at_submission_never_counts_as_active():
    pipe = RecordingPipe()
    ActiveJobsHook().in_transaction(pipe, change(Verb.QUEUE, None, JobStatus.FAILED))

    assert pipe.commands == [("srem", "sf:usage:studio-a:active", "j1")]


def test_caps_name_max_dim_or_the_steps_over_all_levels_with_the_limit_and_the_job_s_value():
    check_caps(LIMITS, max_dim=512, total_steps=100)
    with pytest.raises(ParameterCapExceeded) as dim:
        check_caps(LIMITS, max_dim=513, total_steps=1)
    with pytest.raises(ParameterCapExceeded) as steps:
        check_caps(LIMITS, max_dim=64, total_steps=101)

    assert dim.value.field == "max_dim" and dim.value.quota == {"name": "max_dim", "limit": 512, "used": 513}
    assert steps.value.field == "steps"
    assert steps.value.quota == {"name": "max_steps", "limit": 100, "used": 101}


def test_the_active_jobs_quota_admits_up_to_its_limit_counting_what_the_request_adds():
    check_active(LIMITS, active=2, adding=1)
    with pytest.raises(UsageQuotaExceeded) as refused:
        check_active(LIMITS, active=2, adding=2)

    assert refused.value.quota == {"name": "max_active_jobs", "limit": 3, "used": 2, "requested": 2}
    assert refused.value.retry_after_s is None and refused.value.field is None


def test_the_items_quota_reports_today_s_use_before_the_batch_and_when_it_resets():
    check_items(LIMITS, total=10, adding=4, retry_after_s=5)
    with pytest.raises(UsageQuotaExceeded) as refused:
        check_items(LIMITS, total=11, adding=4, retry_after_s=5)

    assert refused.value.quota == {"name": "items_per_day", "limit": 10, "used": 7, "requested": 4}
    assert refused.value.retry_after_s == 5


def test_the_items_counter_resets_at_the_next_utc_midnight():
    late = datetime(2026, 12, 2, 23, 59, 30, tzinfo=UTC).timestamp()
    midnight = datetime(2026, 12, 3, tzinfo=UTC).timestamp()

    assert seconds_to_next_utc_day(late) == 30
    assert seconds_to_next_utc_day(midnight) == 24 * 3600
