"""Fair share of the bulk queue between tenants: each tenant has at most K batch items released onto it.

A batch item is recorded `queued` as ever, but while fair share is on (K > 0) its message is not sent: the
item waits in its tenant's FIFO list (`held`, not in the outbox, so the reaper does not send it). `release`
moves a tenant's next held ids into its `released` set and into the outbox, while fewer than K are released,
in one Lua call; the caller (shared.lifecycle) then sends their messages and confirms them, and a crash in
between only leaves them in the outbox, which the reaper sends again. An item that ends (any terminal verb)
leaves both lists in its own transaction (`FairShareHook`), and the hook's `after` releases the tenant's next.
The reaper also runs a release pass for every tenant (a crash between a commit and its release). A requeued
item stays released. Celery's bulk queue stays FIFO: with K small, tenants' items interleave on it.
"""

import time
from collections.abc import Callable

import redis

from shared import keys
from shared.jobs import JobStatus
from shared.redis_boundary import translates_redis_errors

# KEYS: held list, released set, outbox, tenants set. ARGV: K (0: no limit), now, tenant.
# Moves held ids into the released set and the outbox while fewer than K are released; the ids moved.
_RELEASE = """
local limit = tonumber(ARGV[1])
local moved = {}
while limit == 0 or redis.call('SCARD', KEYS[2]) < limit do
  local job_id = redis.call('LPOP', KEYS[1])
  if not job_id then break end
  redis.call('SADD', KEYS[2], job_id)
  redis.call('ZADD', KEYS[3], ARGV[2], job_id)
  moved[#moved + 1] = job_id
end
if redis.call('LLEN', KEYS[1]) == 0 and redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[4], ARGV[3])
end
return moved
"""


def queue_forget(pipe, tenant: str, job_id: str) -> None:
    """Add to a transaction: an ended item leaves its tenant's held list and released set."""
    pipe.srem(keys.fair_released_key(tenant), job_id)
    pipe.lrem(keys.fair_held_key(tenant), 0, job_id)


@translates_redis_errors
class FairShare:
    """Hold, release and inspect tenants' batch items over an injected Redis client (StoreUnavailable where
    Redis fails)."""

    def __init__(self, *, client: redis.Redis, items: int) -> None:
        self._redis = client
        self.items = items  # K; 0: no limit, nothing held
        self._release = client.register_script(_RELEASE)

    @property
    def holds(self) -> bool:
        """Whether new batch items are held back (K > 0) rather than sent at once."""
        return self.items > 0

    def hold(self, pipe, tenant: str, job_id: str) -> None:
        """Add to the new item's own transaction: hold it at the end of its tenant's list, not in the outbox.

        The store put it in the outbox earlier in the same transaction; MULTI runs in order, so it never is.
        """
        pipe.zrem(keys.outbox_key(), job_id)
        pipe.rpush(keys.fair_held_key(tenant), job_id)
        pipe.sadd(keys.fair_tenants_key(), tenant)

    def release(self, tenant: str) -> list[str]:
        """Release the tenant's next held items (up to K released at a time): the ids, now in the outbox."""
        tenant_keys = [
            keys.fair_held_key(tenant),
            keys.fair_released_key(tenant),
            keys.outbox_key(),
            keys.fair_tenants_key(),
        ]
        return list(self._release(keys=tenant_keys, args=[self.items, time.time(), tenant]))

    def is_held(self, tenant: str, job_id: str) -> bool:
        """Whether the item waits in its tenant's held list (it has no message yet)."""
        return self._redis.lpos(keys.fair_held_key(tenant), job_id) is not None

    def held(self, tenant: str) -> list[str]:
        """The tenant's held ids, next first."""
        return self._redis.lrange(keys.fair_held_key(tenant), 0, -1)

    def released(self, tenant: str) -> set[str]:
        """The tenant's released ids that have not ended."""
        return self._redis.smembers(keys.fair_released_key(tenant))

    def tenants(self) -> list[str]:
        """The tenants with held or released items."""
        return sorted(self._redis.smembers(keys.fair_tenants_key()))

    def prune(self, tenant: str) -> list[str]:
        """Take out of the tenant's released set the ids whose record expired or ended unseen (else each
        would hold one of its K places for ever); the ids taken out."""
        ids = sorted(self._redis.smembers(keys.fair_released_key(tenant)))
        pipe = self._redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(keys.job_key(job_id), "status")
        statuses = pipe.execute()
        gone = [job_id for job_id, status in zip(ids, statuses, strict=True) if not _live(status)]
        if gone:
            self._redis.srem(keys.fair_released_key(tenant), *gone)
        return gone


def _live(status: str | None) -> bool:
    return status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class FairShareHook:
    """A lifecycle hook: holds new batch items (when fair share is on), forgets ended ones, and releases the
    tenant's next once one ends.

    The forgetting holds on every Lifecycle, fair share or not, so no ended item keeps a place.
    """

    def __init__(self, fair: FairShare | None, *, release: Callable[[str], object]) -> None:
        self._fair = fair  # None: nothing is held or released here (the forgetting still holds)
        self._release = release  # the lifecycle's: releases and sends the tenant's next items

    def in_transaction(self, pipe, change) -> None:
        """Hold a new queued item, or forget an ended one, in the change's own transaction."""
        if not change.batch_id or change.record is None:
            return
        tenant = change.record.owner
        if change.before is None:  # a new record: queued, or refused at submission (already failed)
            if change.after is JobStatus.QUEUED and self._fair is not None and self._fair.holds:
                self._fair.hold(pipe, tenant, change.job_id)
        elif change.after.is_terminal:
            queue_forget(pipe, tenant, change.job_id)

    def after(self, change) -> None:
        """Once an item has ended, release its tenant's next (a crash first: the reaper's pass releases)."""
        if self._ends_an_item(change):
            self._release(change.record.owner)

    def _ends_an_item(self, change) -> bool:
        return (
            self._fair is not None
            and bool(change.batch_id)
            and change.before is not None
            and change.after.is_terminal
            and change.record is not None
        )
