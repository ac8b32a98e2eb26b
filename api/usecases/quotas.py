"""The tenant's quotas, checked before a submission stores anything (shared/quotas.py holds the rules).

The active-jobs check reads the tenant's exact set and the record is written later, so two submissions of
one tenant at the same instant may both pass and overshoot the quota by the other's jobs; the next one sees
the true count. The items-per-day counter is atomic (INCRBY first, given back when over or when the
submission then fails), so it never overshoots.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from api.auth import current_tenant
from api.batch_submission import BatchSubmission
from api.services import services
from api.submission import Submission
from shared.quotas import check_active, check_caps, check_items


def check_job(submission: Submission) -> None:
    """ParameterCapExceeded or UsageQuotaExceeded if the job would exceed its tenant's quotas."""
    quotas, tenant = services().quotas, current_tenant()
    if quotas is None:  # unit tests' services without a quota store
        return
    limits = quotas.limits(tenant)
    check_caps(limits, max_dim=submission.params.max_dim, total_steps=submission.plan.total_steps)
    check_active(limits, active=quotas.usage(tenant).active_jobs, adding=1)


@contextmanager
def batch_within_quotas(submission: BatchSubmission) -> Iterator[None]:
    """Check the batch's caps and active jobs, count its items against today; give them back if the block
    (recording the batch) raises."""
    quotas, tenant = services().quotas, current_tenant()
    if quotas is None:  # unit tests' services without a quota store
        yield
        return
    limits = quotas.limits(tenant)
    plans = [item.plan for item in submission.items if item.upload is not None]
    total_steps = max((plan.total_steps for plan in plans), default=0)
    check_caps(limits, max_dim=submission.params.max_dim, total_steps=total_steps)
    check_active(limits, active=quotas.usage(tenant).active_jobs, adding=len(plans))
    total = quotas.add_items(tenant, len(plans))
    try:
        check_items(limits, total=total, adding=len(plans), retry_after_s=quotas.seconds_to_reset())
        yield
    except BaseException:
        quotas.remove_items(tenant, len(plans))
        raise
