"""The only place errors become HTTP: every error answer is {"error": {"code", "message", "field"?}}."""

import logging

import redis
from flask import jsonify
from werkzeug.exceptions import HTTPException

from shared.errors import (
    Conflict,
    IdempotencyMismatch,
    InvalidImage,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    QueueUnavailable,
    StorageError,
    StyleforgeError,
)

log = logging.getLogger("styleforge.api")

_STATUS = [
    (PayloadTooLarge, 413),
    (InvalidImage, 422),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (IdempotencyMismatch, 422),
    (StorageError, 503),
    (QueueUnavailable, 503),
]


def error_response(status: int, code: str, message: str, field: str | None = None):
    """A JSON error body with its status."""
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return jsonify(error=body), status


def _styleforge_error(err: StyleforgeError):
    status = next((code for kind, code in _STATUS if isinstance(err, kind)), 500)
    return error_response(status, err.code, err.message, err.field)


def _http_error(err: HTTPException):
    code = "too_large" if err.code == 413 else (err.name or "error").lower().replace(" ", "_")
    return error_response(err.code or 500, code, err.description or err.name)


def _redis_down(err: redis.RedisError):
    log.warning("redis unavailable: %s", err)
    return error_response(503, "unavailable", "the job store (Redis) is unreachable; retry shortly")


def _unexpected(err: Exception):
    log.exception("unhandled error")
    return error_response(500, "internal_error", "internal error; the API logs hold the details")


def register_error_handlers(app) -> None:
    """Map every error to a JSON answer."""
    app.register_error_handler(StyleforgeError, _styleforge_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(redis.ConnectionError, _redis_down)
    app.register_error_handler(redis.TimeoutError, _redis_down)
    app.register_error_handler(Exception, _unexpected)
