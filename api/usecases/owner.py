"""The owner check of tenants, in one place: every use case that takes a job or batch id loads it here.

A record another tenant owns answers exactly as an id that does not exist (the same NotFound, the same
message, which echoes nothing), so a caller cannot tell another tenant's ids from unknown ones.
"""

from collections.abc import Callable
from typing import TypeVar

from api.args import checked_id
from api.auth import current_tenant
from api.services import services
from shared.batches import BatchRecord
from shared.errors import NotFound
from shared.jobs import JobRecord

Owned = TypeVar("Owned", JobRecord, BatchRecord)


def owned_job(job_id: str) -> JobRecord:
    """The caller's job under ``job_id``; NotFound when there is none or another tenant owns it."""
    return _owned("job", lambda: services().store.get(checked_id(job_id)))


def owned_job_with_snapshots(job_id: str) -> tuple[JobRecord, list[int]]:
    """The caller's job and its snapshot steps, in one round trip; NotFound as for `owned_job`."""
    found: list[int] = []

    def load() -> JobRecord:
        record, steps = services().store.get_with_snapshots(checked_id(job_id))
        found.extend(steps)
        return record

    return _owned("job", load), found


def owned_batch(batch_id: str) -> BatchRecord:
    """The caller's batch under ``batch_id``; NotFound when there is none or another tenant owns it."""
    return _owned("batch", lambda: services().batches.get(checked_id(batch_id, "batch")))


def not_found(what: str) -> NotFound:
    """The one answer for an id the caller may not see: unknown, malformed, expired or another tenant's."""
    return NotFound(f"no {what} with this id", field="id")


def _owned(what: str, load: Callable[[], Owned]) -> Owned:
    try:
        record = load()
    except NotFound:
        raise not_found(what) from None
    if record.owner != current_tenant():
        raise not_found(what)
    return record
