"""Quotas per tenant: the limits (the settings' defaults, overridden per tenant in Redis) and the usage.

Four quotas, checked by the API's use cases before anything is stored:
- `max_active_jobs`: jobs queued or running at once (shared/active_jobs.py keeps the exact set);
- `items_per_day`: batch items submitted per UTC day (a counter per day, kept two days);
- `max_dim` and `max_steps`: the largest longest side and total steps (over all levels) one job may ask for.
"""

import time
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta

import redis

from shared import keys
from shared.config import Settings
from shared.errors import InvalidInput, ParameterCapExceeded, UsageQuotaExceeded
from shared.redis_boundary import translates_redis_errors

# A day's item counter outlives its day by one, so a request just after midnight still finds yesterday's.
ITEMS_COUNTER_TTL_S = 2 * 24 * 3600


@dataclass(frozen=True)
class Quotas:
    """One tenant's limits."""

    max_active_jobs: int
    items_per_day: int
    max_dim: int
    max_steps: int

    @classmethod
    def defaults(cls, settings: Settings) -> "Quotas":
        """The deployment's defaults (STYLEFORGE_QUOTA_*)."""
        return cls(
            max_active_jobs=settings.quota_max_active_jobs,
            items_per_day=settings.quota_items_per_day,
            max_dim=settings.quota_max_dim,
            max_steps=settings.quota_max_steps,
        )


QUOTA_NAMES = tuple(f.name for f in fields(Quotas))


@dataclass(frozen=True)
class Usage:
    """What a tenant uses now: jobs queued or running, batch items submitted today (UTC)."""

    active_jobs: int
    items_today: int


def utc_day(now: float) -> str:
    """The UTC day of a timestamp, as the item counters are named (`YYYY-MM-DD`)."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def seconds_to_next_utc_day(now: float) -> int:
    """Whole seconds until the next UTC midnight (at least 1): when the items-per-day quota resets."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((today + timedelta(days=1)).timestamp() - now + 0.999))


def check_caps(limits: Quotas, *, max_dim: int, total_steps: int) -> None:
    """ParameterCapExceeded when a job asks for a larger max_dim or more steps than its tenant may."""
    if max_dim > limits.max_dim:
        raise ParameterCapExceeded(
            f"max_dim {max_dim} exceeds this tenant's quota of {limits.max_dim} px",
            field="max_dim",
            quota={"name": "max_dim", "limit": limits.max_dim, "used": max_dim},
        )
    if total_steps > limits.max_steps:
        raise ParameterCapExceeded(
            f"the job runs {total_steps} steps over all its levels; this tenant's quota is "
            f"{limits.max_steps}",
            field="steps",
            quota={"name": "max_steps", "limit": limits.max_steps, "used": total_steps},
        )


def check_active(limits: Quotas, *, active: int, adding: int) -> None:
    """UsageQuotaExceeded when ``adding`` more jobs would put the tenant over its jobs queued or running."""
    if active + adding > limits.max_active_jobs:
        raise UsageQuotaExceeded(
            f"this tenant has {active} jobs queued or running and the request adds {adding}; the quota is "
            f"{limits.max_active_jobs} at once: wait for some to end, or cancel some",
            quota=_usage("max_active_jobs", limits.max_active_jobs, active, adding),
        )


def check_items(limits: Quotas, *, total: int, adding: int, retry_after_s: int) -> None:
    """UsageQuotaExceeded when today's batch items, ``adding`` of them this request's, exceed the quota."""
    if total > limits.items_per_day:
        used = total - adding
        raise UsageQuotaExceeded(
            f"this tenant submitted {used} batch items today (UTC) and the batch adds {adding}; the quota is "
            f"{limits.items_per_day} a day",
            quota=_usage("items_per_day", limits.items_per_day, used, adding),
            retry_after_s=retry_after_s,
        )


def _usage(name: str, limit: int, used: int, requested: int) -> dict[str, int | str]:
    return {"name": name, "limit": limit, "used": used, "requested": requested}


@translates_redis_errors
class QuotaStore:
    """Quota overrides (`sf:quota:{tenant}`) and usage (`sf:usage:{tenant}:...`) in Redis."""

    def __init__(self, *, client: redis.Redis, defaults: Quotas, clock=time.time) -> None:
        self._redis = client
        self._defaults = defaults
        self._clock = clock

    def limits(self, tenant: str) -> Quotas:
        """The tenant's quotas: its overrides over the defaults."""
        raw = self._redis.hgetall(keys.quota_key(tenant))
        return replace(self._defaults, **{name: int(raw[name]) for name in QUOTA_NAMES if raw.get(name)})

    def overrides(self, tenant: str) -> dict[str, int]:
        """Only what `quotas set` stored for the tenant."""
        raw = self._redis.hgetall(keys.quota_key(tenant))
        return {name: int(raw[name]) for name in QUOTA_NAMES if raw.get(name)}

    def set(self, tenant: str, **limits: int) -> Quotas:
        """Store overrides (each at least 1); the tenant's quotas after the change."""
        for name, value in limits.items():
            if name not in QUOTA_NAMES:
                raise InvalidInput(f"unknown quota {name!r}", field=name)
            if not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a whole number of at least 1, got {value!r}", field=name)
        if limits:
            self._redis.hset(keys.quota_key(tenant), mapping={k: str(v) for k, v in limits.items()})
        return self.limits(tenant)

    def reset(self, tenant: str) -> Quotas:
        """Drop every override: the tenant is back on the defaults."""
        self._redis.delete(keys.quota_key(tenant))
        return self._defaults

    def usage(self, tenant: str) -> Usage:
        """Jobs queued or running, and batch items submitted today."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.scard(keys.active_jobs_key(tenant))
        pipe.get(keys.items_per_day_key(tenant, utc_day(self._clock())))
        active, items = pipe.execute()
        return Usage(active_jobs=int(active), items_today=int(items or 0))

    def add_items(self, tenant: str, count: int) -> int:
        """Count ``count`` batch items against today (atomically); today's total with them."""
        key = keys.items_per_day_key(tenant, utc_day(self._clock()))
        pipe = self._redis.pipeline(transaction=True)
        pipe.incrby(key, count)
        pipe.expire(key, ITEMS_COUNTER_TTL_S)
        total, _ = pipe.execute()
        return int(total)

    def remove_items(self, tenant: str, count: int) -> None:
        """Give back items counted by add_items (a refused or failed submission)."""
        self._redis.decrby(keys.items_per_day_key(tenant, utc_day(self._clock())), count)

    def seconds_to_reset(self) -> int:
        """Seconds until today's item counters are replaced by tomorrow's."""
        return seconds_to_next_utc_day(self._clock())


def as_dict(quotas: Quotas) -> dict[str, int]:
    """The quotas as a plain mapping (CLI output)."""
    return asdict(quotas)
