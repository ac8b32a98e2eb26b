"""The only place errors become HTTP: every error answer is {"error": {"code", "message", "field"}}.

`field` names the request field at fault, or is null when no one field is (an outage, an unknown route).
"""

import logging
from collections.abc import Mapping

import redis
from flask import jsonify, request
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import BadRequest, HTTPException

from api.limits import describe
from shared.errors import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    InvalidImage,
    InvalidInput,
    KeyMissing,
    NotFound,
    ParameterCapExceeded,
    PayloadTooLarge,
    QueueUnavailable,
    QuotaExceeded,
    StorageError,
    StoreUnavailable,
    StyleforgeError,
    Unauthorized,
    UsageQuotaExceeded,
)
from shared.redis_boundary import TRANSIENT

log = logging.getLogger("styleforge.api")

_STATUS = [
    (PayloadTooLarge, 413),
    (InvalidImage, 422),
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (ParameterCapExceeded, 403),  # the same request never passes: forbidden to this tenant
    (UsageQuotaExceeded, 429),  # too much at once or today: a retry later may pass
    (NotFound, 404),
    (Conflict, 409),
    (IdempotencyMismatch, 422),
    (StorageError, 503),
    (QueueUnavailable, 503),
]
# What a client reads while Redis is away (the stores raise StoreUnavailable; BatchStore, raw redis errors).
REDIS_DOWN_MESSAGE = "the job store (Redis) is unreachable; retry shortly"
# Seconds a client should wait before retrying a 503: Redis and S3 restarts take a few seconds.
RETRY_AFTER_S = 5


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
):
    """A JSON error body with its status and headers (and Retry-After on 503); ``extra`` adds members to
    the error object (a quota's or a rate limit's details)."""
    headers = dict(headers or {})
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    body = {"code": code, "message": message, "field": field, **(extra or {})}
    return jsonify(error=body), status, headers


def _styleforge_error(err: StyleforgeError):
    status = next((code for kind, code in _STATUS if isinstance(err, kind)), 500)
    if isinstance(err, QuotaExceeded):
        return _quota_exceeded(status, err)
    return error_response(status, err.code, err.message, err.field, _challenge(err))


def _quota_exceeded(status: int, err: QuotaExceeded):
    headers = {"Retry-After": str(err.retry_after_s)} if err.retry_after_s else {}
    return error_response(status, err.code, err.message, err.field, headers, {"quota": err.quota})


def _challenge(err: StyleforgeError) -> dict[str, str]:
    """RFC 6750's WWW-Authenticate on a 401: which scheme to use, and invalid_token when one was sent."""
    if not isinstance(err, Unauthorized):
        return {}
    challenge = 'Bearer realm="styleforge"'
    if not isinstance(err, KeyMissing):
        challenge += ', error="invalid_token"'
    return {"WWW-Authenticate": challenge}


def _rate_limited(err: RateLimitExceeded):
    # Retry-After and the RateLimit-* headers are added by api/limits.py's add_headers.
    scope, limit = err.limit.scope, str(err.limit.limit)
    extra = {"limit": {"name": scope, "limit": limit}}
    return error_response(429, "rate_limited", describe(scope, limit), extra=extra)


def _http_error(err: HTTPException):
    decode_error = _json_decode_error(err)
    if decode_error is not None:
        return _bad_json(f"the request body is not valid JSON: {decode_error}")
    code = "too_large" if err.code == 413 else (err.name or "error").lower().replace(" ", "_")
    return error_response(err.code or 500, code, err.description or err.name, headers=_kept_headers(err))


def _kept_headers(err: HTTPException) -> dict[str, str]:
    """The exception's own headers but its Content-Type (e.g. a 405's Allow, which RFC 9110 requires)."""
    return {name: value for name, value in err.get_headers() if name.lower() != "content-type"}


def _json_decode_error(err: HTTPException) -> ValueError | None:
    """The ValueError behind a 400 raised by request.get_json() on a JSON request, if that is what this is."""
    if not isinstance(err, BadRequest) or err.code != 400 or not request.is_json:
        return None
    cause = err.__cause__ or err.__context__
    while cause is not None and not isinstance(cause, ValueError):
        cause = cause.__cause__ or cause.__context__
    return cause


def _bad_json(message: str):
    return error_response(400, InvalidInput.code, message, "body")


def _recursion(err: RecursionError):
    # json.loads raises RecursionError (not ValueError) on deeply nested arrays, so Flask lets it through.
    if request.is_json:
        return _bad_json("the JSON body is nested too deeply")
    return _unexpected(err)


def _redis_down(err: redis.RedisError):
    log.warning("redis unavailable: %s", err)
    return error_response(503, StoreUnavailable.code, REDIS_DOWN_MESSAGE)


def _store_unavailable(err: StoreUnavailable):
    if not err.transient:  # a Redis error that is no outage (a bug, say): a 500, like any unexpected error
        return _unexpected(err)
    log.warning("redis unavailable: %s", err.message)
    return error_response(503, err.code, REDIS_DOWN_MESSAGE)


def _unexpected(err: Exception):
    log.exception("unhandled error")
    return error_response(500, "internal_error", "internal error; the API logs hold the details")


def register_error_handlers(app) -> None:
    """Map every error to a JSON answer."""
    app.register_error_handler(StyleforgeError, _styleforge_error)
    app.register_error_handler(StoreUnavailable, _store_unavailable)  # the more specific handler wins
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RateLimitExceeded, _rate_limited)  # the more specific handler wins
    for kind in TRANSIENT:
        app.register_error_handler(kind, _redis_down)
    app.register_error_handler(RecursionError, _recursion)
    app.register_error_handler(Exception, _unexpected)
