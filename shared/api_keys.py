"""API keys: `sf_<id>_<secret>`, looked up by the public id, only the SHA-256 of the secret kept in Redis.

Why a plain SHA-256 and no salt, pepper or slow hash: the secret is 32 random bytes from `secrets`, so no
password-cracking trick applies (there is no dictionary to try, and 2^256 guesses are out of reach however
fast the hash). A server pepper would add a second secret to deploy and rotate and buy nothing against that.
The stored digest is compared with `hmac.compare_digest`, so the comparison's time does not depend on where
it first differs.

Prefixed like GitHub's and Stripe's tokens, so secret scanners can be taught the shape `sf_[0-9a-f]{12}_...`.
"""

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import redis

from shared import keys
from shared.errors import InvalidInput, NotFound, Unauthorized
from shared.redis_boundary import translates_redis_errors

PREFIX = "sf"
# The id is public (it names the key in `keys list` and in logs): 6 random bytes as 12 hex digits.
ID_BYTES = 6
# The secret: 32 random bytes (256 bits), URL-safe base64 without padding, 43 characters.
SECRET_BYTES = 32
KEY_PATTERN = re.compile(r"sf_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")
# Tenant names: what a URL path segment and an object key prefix (tenants/{tenant}/...) can hold as is.
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class ApiKey:
    """One key's record, as `keys list` shows it: never the secret, nor its hash."""

    id: str
    tenant: str
    created_at: float
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        """True once the key has been revoked."""
        return self.revoked_at is not None


@dataclass(frozen=True)
class NewKey:
    """A key just made: the full key (shown once) and its record."""

    key: str
    record: ApiKey


def generate(rng=secrets) -> tuple[str, str, str]:
    """A fresh (full key, id, secret)."""
    key_id = rng.token_hex(ID_BYTES)
    secret = rng.token_urlsafe(SECRET_BYTES)
    return f"{PREFIX}_{key_id}_{secret}", key_id, secret


def parse(key: str) -> tuple[str, str]:
    """The (id, secret) of a well-formed key; Unauthorized otherwise."""
    match = KEY_PATTERN.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise Unauthorized("the API key is malformed: expected sf_<id>_<secret>", field="authorization")
    return match["id"], match["secret"]


def secret_digest(secret: str) -> str:
    """The hex SHA-256 of a secret: the only form of it that is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def verify(secret: str, stored_digest: str) -> bool:
    """The secret matches the stored digest (compared in constant time)."""
    return hmac.compare_digest(secret_digest(secret), stored_digest)


def check_tenant(tenant: str) -> str:
    """The tenant name if it is valid; InvalidInput naming the rule otherwise."""
    if not TENANT_PATTERN.fullmatch(tenant or ""):
        raise InvalidInput(
            f"tenant {tenant!r} is not valid: 1-63 characters of a-z, 0-9 and '-', not starting with '-'",
            field="tenant",
        )
    return tenant


@translates_redis_errors
class KeyStore:
    """API keys in Redis: `sf:apikey:{id}` hashes and the `sf:apikeys` index of their ids."""

    def __init__(self, *, client: redis.Redis) -> None:
        self._redis = client

    def create(self, tenant: str) -> NewKey:
        """Make and store a key for tenant; the full key is in the answer only."""
        key, key_id, secret = generate()
        record = ApiKey(id=key_id, tenant=check_tenant(tenant), created_at=time.time())
        fields = {"id": key_id, "tenant": tenant, "created_at": repr(record.created_at), "revoked_at": ""}
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.api_key_key(key_id), mapping={**fields, "secret_sha256": secret_digest(secret)})
        pipe.sadd(keys.api_keys_index_key(), key_id)
        pipe.execute()
        return NewKey(key=key, record=record)

    def authenticate(self, key: str) -> ApiKey:
        """The record of a valid, unrevoked key; Unauthorized for any other (read afresh every call)."""
        key_id, secret = parse(key)
        raw = self._redis.hgetall(keys.api_key_key(key_id))
        if not raw or not verify(secret, raw.get("secret_sha256", "")):
            raise Unauthorized("the API key is not valid", field="authorization")
        record = _record(raw)
        if record.revoked:
            raise Unauthorized("the API key has been revoked", field="authorization")
        return record

    def revoke(self, key_id: str) -> ApiKey:
        """Mark the key revoked (the first revocation's time is kept); NotFound for an unknown id."""
        name = keys.api_key_key(key_id)
        if not self._redis.exists(name):
            raise NotFound(f"no API key with id {key_id!r}", field="id")
        if not self._redis.hget(name, "revoked_at"):
            self._redis.hset(name, "revoked_at", repr(time.time()))
        return _record(self._redis.hgetall(name))

    def list(self) -> list[ApiKey]:
        """Every key, oldest first."""
        pipe = self._redis.pipeline(transaction=False)
        for key_id in sorted(self._redis.smembers(keys.api_keys_index_key())):
            pipe.hgetall(keys.api_key_key(key_id))
        return sorted((_record(raw) for raw in pipe.execute() if raw), key=lambda k: (k.created_at, k.id))


def _record(raw: dict[str, str]) -> ApiKey:
    revoked = raw.get("revoked_at") or ""
    return ApiKey(
        id=raw["id"],
        tenant=raw["tenant"],
        created_at=float(raw["created_at"]),
        revoked_at=float(revoked) if revoked else None,
    )
