"""The result cache's index in Redis: per tenant and cache key, the stored result of an earlier job.

`sf:result:{tenant}:{cache_key}` is a hash (job id, result object key, width, height, losses) with the job
records' TTL. The entry only names an object: whoever reads it checks that the object still exists before
using it, since the bucket expires job outputs on its own schedule (deploy/s3-lifecycle.json).
"""

import json
from dataclasses import dataclass, field

import redis

from shared import keys
from shared.redis_boundary import translates_redis_errors


@dataclass(frozen=True)
class CachedResult:
    """What an index entry names: the job that made a result, where it is stored, and its numbers."""

    job_id: str
    result_key: str
    width: int
    height: int
    losses: dict[str, float] = field(default_factory=dict)
    initial_losses: dict[str, float] = field(default_factory=dict)

    def to_fields(self) -> dict[str, str]:
        """The Redis hash fields."""
        return {
            "job_id": self.job_id,
            "result_key": self.result_key,
            "width": str(self.width),
            "height": str(self.height),
            "losses": json.dumps(self.losses, sort_keys=True),
            "initial_losses": json.dumps(self.initial_losses, sort_keys=True),
        }

    @classmethod
    def from_fields(cls, raw: dict[str, str]) -> "CachedResult":
        """Parse the Redis hash fields."""
        return cls(
            job_id=raw["job_id"],
            result_key=raw["result_key"],
            width=int(raw["width"]),
            height=int(raw["height"]),
            losses=json.loads(raw.get("losses") or "{}"),
            initial_losses=json.loads(raw.get("initial_losses") or "{}"),
        )


@translates_redis_errors
class ResultIndex:
    """Entries of the result cache over an injected Redis client; each lives ``ttl_s`` from its writing."""

    def __init__(self, *, client: redis.Redis, ttl_s: int) -> None:
        self._redis = client
        self._ttl = ttl_s

    def lookup(self, tenant: str, cache_key: str) -> CachedResult | None:
        """The tenant's entry for ``cache_key``, or None (none, expired, or written by an older form)."""
        raw = self._redis.hgetall(keys.result_cache_key(tenant, cache_key))
        try:
            return CachedResult.from_fields(raw) if raw else None
        except (KeyError, ValueError):
            return None

    def record(self, tenant: str, cache_key: str, result: CachedResult) -> None:
        """Point the tenant's entry for ``cache_key`` at ``result`` (replacing any), for ``ttl_s``."""
        name = keys.result_cache_key(tenant, cache_key)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(name)
        pipe.hset(name, mapping=result.to_fields())
        pipe.expire(name, self._ttl)
        pipe.execute()

    def drop(self, tenant: str, cache_key: str) -> None:
        """Forget the entry (its object expired): the next job with this key computes."""
        self._redis.delete(keys.result_cache_key(tenant, cache_key))
