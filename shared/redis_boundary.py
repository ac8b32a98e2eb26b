"""The stores' edge: a Redis error leaves a store as StoreUnavailable, so no caller handles redis errors.

Every store (JobStore, BatchStore, LeaseStore, IdempotencyStore, StreamReader) carries
`translates_redis_errors`; the original error stays chained (``raise ... from``) for the logs.
"""

import functools
import inspect
from collections.abc import Callable

import redis

from shared.errors import StoreUnavailable

# Redis away, not answering in time, or still loading its dataset after a restart: a retry soon may succeed.
TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


def unavailable(err: redis.RedisError) -> StoreUnavailable:
    """The StoreUnavailable a Redis error becomes, naming what failed and what to do."""
    transient = isinstance(err, TRANSIENT)
    hint = "retry shortly" if transient else "not an outage: the logs hold the traceback"
    detail = f"{type(err).__name__}: {err}"
    return StoreUnavailable(f"the job store (Redis) failed ({detail}); {hint}", transient=transient)


def translates_redis_errors(cls: type) -> type:
    """Class decorator: every public method of a store raises StoreUnavailable where Redis raised."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translating(member))
    return cls


def _translating(method: Callable) -> Callable:
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except redis.RedisError as err:
            raise unavailable(err) from err

    return call
