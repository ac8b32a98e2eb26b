"""Honour the Idempotency-Key header: a creating request runs once per key; repeats get the same id."""

from collections.abc import Callable

from api.auth import current_tenant
from api.services import services
from shared.idempotency import fingerprint

HEADER = "Idempotency-Key"


def create_once(key: str | None, parts: list[str], create: Callable[[], str]) -> str:
    """The id ``create`` made for this key (the request's Idempotency-Key) before, or the id it makes now
    (no key: always creates).

    ``parts`` describe the request (params, input hashes); the same key with different parts answers 422.
    Keys are the caller's tenant's own: another tenant's same key creates anew.
    """
    if key is None:
        return create()
    store, digest, tenant = services().idempotency, fingerprint(*parts), current_tenant()
    existing = store.claim(tenant, key, digest)
    if existing:
        return existing
    try:
        record_id = create()
    except BaseException:
        store.release(tenant, key)  # nothing was created: the client may retry with the same key
        raise
    store.bind(tenant, key, digest, record_id)
    return record_id
