"""Idempotency keys: the same key with the same request gives the same record, never a second one."""

import hashlib

import redis

from shared import keys
from shared.errors import Conflict, IdempotencyMismatch, InvalidInput
from shared.redis_boundary import translates_redis_errors

MAX_KEY_LENGTH = 255
# Seconds a key stays claimed while its first request runs: a crash frees it soon, not after the TTL.
PENDING_TTL_S = 120


@translates_redis_errors
class IdempotencyStore:
    """`sf:idem:{tenant}:{key}` holds "fingerprint|record id" (no id while the first request runs), with a
    TTL. Keys are per tenant: another tenant's same key is another claim, never this tenant's record."""

    def __init__(self, *, client: redis.Redis, ttl_s: int) -> None:
        self._redis = client
        self._ttl = ttl_s

    def claim(self, tenant: str, key: str, fingerprint: str) -> str | None:
        """None when this request is the first with the key (go ahead); else the id it created.

        Raises:
            IdempotencyMismatch: the key was used with a different request.
            Conflict: the first request with this key is still being processed.
        """
        check_key(key)
        name = keys.idempotency_key(tenant, key)
        if self._redis.set(name, f"{fingerprint}|", nx=True, ex=min(PENDING_TTL_S, self._ttl)):
            return None
        stored = self._redis.get(name) or "|"
        stored_fingerprint, _, record_id = stored.partition("|")
        if stored_fingerprint != fingerprint:
            raise IdempotencyMismatch(
                "Idempotency-Key was already used with a different request", field="Idempotency-Key"
            )
        if not record_id:
            raise Conflict(
                "a request with this Idempotency-Key is still in progress; retry shortly",
                field="Idempotency-Key",
            )
        return record_id

    def bind(self, tenant: str, key: str, fingerprint: str, record_id: str) -> None:
        """Remember which record the tenant's key created."""
        self._redis.set(keys.idempotency_key(tenant, key), f"{fingerprint}|{record_id}", ex=self._ttl)

    def release(self, tenant: str, key: str) -> None:
        """Forget a claim whose request failed, so the client may retry with the same key."""
        self._redis.delete(keys.idempotency_key(tenant, key))


def check_key(key: str) -> None:
    """Refuse empty, overlong or non-printable keys."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters", field="Idempotency-Key"
        )


def fingerprint(*parts: str) -> str:
    """A digest of what makes two requests the same."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()
