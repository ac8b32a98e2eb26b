"""Job leases: the worker running a job holds `sf:job:{id}:lease` (SET NX PX) and keeps renewing it.

A lease that is not renewed expires: its worker died, and the reaper may requeue the job. Renewing and
releasing compare the holder first (in one Lua call), so a worker never extends or drops another's lease. A
requeue hands the job over: `LeaseHandover` drops its lease in the requeue's transaction.
"""

import redis

from shared import keys
from shared.jobs import JobStatus
from shared.redis_boundary import translates_redis_errors

# KEYS[1] = lease key, ARGV[1] = holder, ARGV[2] = milliseconds: extend only our own lease.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS[1] = lease key, ARGV[1] = holder: delete only our own lease.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@translates_redis_errors
class LeaseStore:
    """Acquire, renew and release job leases held by one named worker (StoreUnavailable where Redis fails)."""

    def __init__(self, *, client: redis.Redis, holder: str, lease_s: float) -> None:
        self._redis = client
        self.holder = holder
        self._ms = max(1, int(lease_s * 1000))
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self, job_id: str) -> bool:
        """Take the job's lease; False when another worker holds it (a duplicate delivery)."""
        key = keys.job_lease_key(job_id)
        if self._redis.set(key, self.holder, nx=True, px=self._ms):
            return True
        return bool(self._renew(keys=[key], args=[self.holder, self._ms]))  # ours already: a redelivery to us

    def renew(self, job_id: str) -> bool:
        """Extend our lease; False when it expired or another worker holds it now."""
        return bool(self._renew(keys=[keys.job_lease_key(job_id)], args=[self.holder, self._ms]))

    def release(self, job_id: str) -> None:
        """Drop our lease (no-op when it is not ours)."""
        self._release(keys=[keys.job_lease_key(job_id)], args=[self.holder])

    def is_leased(self, job_id: str) -> bool:
        """Whether any worker holds the job's lease now."""
        return bool(self._redis.exists(keys.job_lease_key(job_id)))


class LeaseHandover:
    """A lifecycle hook: a requeue (running -> queued) drops the job's lease in its own transaction.

    The requeue sends the job's new message right after; without this, a worker receiving it before the old
    holder's `finally` released the lease would see the job leased, skip the delivery as a duplicate, and
    leave the job queued with no message (seen on SIGTERM with an idle worker by test_two_workers.py).
    """

    def in_transaction(self, pipe, change) -> None:
        """DEL the lease when a running job goes back to queued; nothing otherwise."""
        if change.before is JobStatus.RUNNING and change.after is JobStatus.QUEUED:
            pipe.delete(keys.job_lease_key(change.job_id))

    def after(self, change) -> None:
        """Nothing: the lease went with the status."""
