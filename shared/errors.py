"""The one exception hierarchy of styleforge. HTTP codes are assigned in api/ only."""


class StyleforgeError(Exception):
    """Base of every error styleforge raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(StyleforgeError):
    """A request parameter is malformed or out of range; `field` names it."""

    code = "invalid_input"


class InvalidImage(InvalidInput):
    """An uploaded file is not a usable image (not an image, truncated, a bomb, too small)."""

    code = "invalid_image"


class PayloadTooLarge(InvalidInput):
    """A request exceeds a configured size or count limit."""

    code = "too_large"


class IdempotencyMismatch(StyleforgeError):
    """An Idempotency-Key was reused with a different request."""

    code = "idempotency_mismatch"


class Unauthorized(StyleforgeError):
    """A request carries no API key, or one that is malformed, unknown or revoked."""

    code = "unauthorized"


class KeyMissing(Unauthorized):
    """A request that needs an API key carries none."""


class QuotaExceeded(StyleforgeError):
    """A request would take a tenant past one of its quotas; ``quota`` names it, its limit and the use.

    ``quota`` is ``{"name", "limit", "used"}`` plus ``"requested"`` where the request adds to a usage (the
    active jobs now and the jobs it adds, say); ``retry_after_s`` is when a retry may succeed, if known.
    """

    code = "quota_exceeded"

    def __init__(
        self,
        message: str,
        *,
        quota: dict[str, int | str],
        field: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.quota = quota
        self.retry_after_s = retry_after_s


class UsageQuotaExceeded(QuotaExceeded):
    """Too much at once or today (active jobs, batch items per day): a retry later may succeed."""


class ParameterCapExceeded(QuotaExceeded):
    """A job asks for more than its tenant may (max_dim, steps): the same request never succeeds."""


class NotFound(StyleforgeError):
    """No record exists under the given id."""

    code = "not_found"


class Forbidden(StyleforgeError):
    """The request names what its tenant may not reach, e.g. an object key outside `tenants/{tenant}/`.

    Decided from the name alone, never by looking, so it tells nothing of what exists there."""

    code = "forbidden"


class Conflict(StyleforgeError):
    """The record is not in a state that allows the request (e.g. cancelling a finished job)."""

    code = "conflict"


class StorageError(StyleforgeError):
    """The object store failed or is unreachable."""

    code = "storage_error"


class QueueUnavailable(StyleforgeError):
    """The broker refused a job."""

    code = "queue_unavailable"


class StoreUnavailable(StyleforgeError):
    """The job store (Redis) failed; ``transient`` when it is away or busy and a retry soon may succeed.

    The stores raise it in place of redis errors (shared/redis_boundary.py), so no caller imports redis.
    """

    code = "unavailable"

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class ModelUnavailable(StyleforgeError):
    """The VGG19 weights requested by the worker cannot be loaded."""

    code = "model_unavailable"


class ConfigError(StyleforgeError):
    """A STYLEFORGE_* setting is malformed."""

    code = "config_error"
