"""Who computes a style's targets first: one worker per targets object, the others wait for its result.

Without it, two workers that start jobs of one new style at once both compute its Gram matrices. With it
the first takes a Redis lock (SET NX PX) named by the targets' object key; the others poll for the object
and load it. A holder that dies or fails lets its lock expire (or releases it), and a waiter then computes
itself. Where Redis is unreachable every worker computes, as before: sharing targets is an optimisation.
"""

import logging
import secrets
import time
from collections.abc import Callable

import redis

from shared import keys

log = logging.getLogger("styleforge.target_locks")

# A level's targets take seconds to compute even at 2048 px on a CPU; a holder that has not stored them by
# then has died or failed, and its lock lapses.
LOCK_S = 120.0
POLL_S = 0.2  # how often a waiter looks for the object


class NoLocks:
    """Every worker computes for itself (a runner used alone, in unit tests)."""

    def first(self, name: str) -> bool:
        return True

    def release(self, name: str) -> None:
        return None

    def wait_for(self, name: str, ready: Callable[[], bool]) -> bool:
        return False


class RedisTargetLocks:
    """The lock and the wait, over the deployment's Redis."""

    def __init__(self, client: redis.Redis, *, lock_s: float = LOCK_S, poll_s: float = POLL_S) -> None:
        self._redis = client
        self._lock_ms = int(lock_s * 1000)
        self._poll_s = poll_s
        self._token = secrets.token_hex(8)

    def first(self, name: str) -> bool:
        """Take the lock for the targets object ``name``: True when this worker is to compute them."""
        try:
            return bool(self._redis.set(keys.targets_lock_key(name), self._token, nx=True, px=self._lock_ms))
        except redis.RedisError as err:
            log.warning("style targets lock unavailable (%s): computing without it", err)
            return True

    def release(self, name: str) -> None:
        """Drop the lock if this worker still holds it (its holder computed, or failed to)."""
        try:
            if self._redis.get(keys.targets_lock_key(name)) == self._token:
                self._redis.delete(keys.targets_lock_key(name))
        except redis.RedisError as err:
            log.warning("style targets lock not released (%s): it lapses by itself", err)

    def wait_for(self, name: str, ready: Callable[[], bool]) -> bool:
        """Wait while another worker holds the lock: True once ``ready()`` (its targets are stored), False
        when the lock is gone without them (its holder failed) or Redis is away: then compute."""
        try:
            while self._redis.exists(keys.targets_lock_key(name)):
                if ready():
                    return True
                time.sleep(self._poll_s)
        except redis.RedisError as err:
            log.warning("style targets lock unreadable (%s): computing without it", err)
            return False
        return ready()


def locks_over(store) -> RedisTargetLocks | NoLocks:
    """Locks over the job store's Redis; none for a store that has no Redis (the unit tests' fake)."""
    client = getattr(store, "client", None)
    return RedisTargetLocks(client) if isinstance(client, redis.Redis) else NoLocks()
