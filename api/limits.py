"""Rate limits per API key: Flask-Limiter on the deployment's Redis, two buckets per key.

- `submit`: every POST under /v1 but the cancels (a job, a batch): STYLEFORGE_RATE_LIMIT_SUBMIT.
- `read`: every other /v1 request (GETs, an event stream once per connection, cancels, which free work
  rather than add it): STYLEFORGE_RATE_LIMIT_READ.
- Not limited: the health checks, /openapi.json, /metrics and the web page's files (not under /v1).

Keyed by the request's API key id (api/auth.py sets g.api_key in a before_request registered before the
limiter's, so the key function sees it), else by the client address (open mode). A request refused 401
never reaches the limiter: a key's secret has 256 bits, so there is nothing to guess at any rate.

The moving window: each key's bucket holds the times of its requests in the last window, so no burst of
twice the limit fits across a window's edge (fixed windows allow one), and Retry-After is when the oldest
request leaves the window, exact. Its cost is one list of up to `limit` timestamps per key and bucket.

When Redis fails the limiter lets requests through (swallow_errors) and logs it: the limits guard the
studio's API, they must not take it down; whatever needs Redis then answers 503 by itself.

Headers (IETF draft-ietf-httpapi-ratelimit-headers-07 names): RateLimit-Limit, RateLimit-Remaining and
RateLimit-Reset (seconds until the window frees a request) on every limited response, Retry-After on a 429.
They are written here from Flask-Limiter's `current_limit`, as its maintainer advises: its own header
injection writes the reset as a Unix time, and Retry-After on every response (a 503's own included).
"""

import logging
import math
import time

import redis
from flask import Flask, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many

from api.auth import PROTECTED_PREFIX
from shared import keys
from shared.config import Settings
from shared.errors import ConfigError

log = logging.getLogger("styleforge.api")

SUBMIT, READ = "submit", "read"
# What each bucket counts, in the 429's words.
LIMIT_NAMES = {SUBMIT: "submissions", READ: "requests other than submissions"}
STRATEGY = "moving-window"
EXTENSION = "styleforge.limiter"
# Seconds the limiter's own Redis connection waits, as the stores' (shared/store.py connect_redis).
REDIS_OPTIONS = {"socket_connect_timeout": 5, "socket_timeout": 4}


def init_limits(app: Flask) -> None:
    """Limit /v1 requests per API key (after api.auth's check); nothing when both limits are ""."""
    svc = app.extensions["styleforge"]
    settings: Settings = svc.settings
    limits = [
        ApplicationLimit(value, scope=kind, exempt_when=_not(kind))
        for kind, value in ((SUBMIT, settings.rate_limit_submit), (READ, settings.rate_limit_read))
        if _checked(kind, value)
    ]
    if not limits:
        return
    limiter = Limiter(
        rate_limit_key,
        application_limits=limits,
        strategy=STRATEGY,
        storage_uri=svc.rate_limit_storage_uri,
        storage_options={**REDIS_OPTIONS, "key_prefix": keys.rate_limit_prefix()},
        swallow_errors=True,
        headers_enabled=False,  # written by add_headers
    )
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    app.after_request(add_headers)


def rate_limit_key() -> str:
    """The bucket's owner: the API key's id, else (open mode) the client's address."""
    record = g.get("api_key")
    return f"key:{record.id}" if record is not None else f"addr:{get_remote_address()}"


def request_kind() -> str | None:
    """SUBMIT, READ, or None for a request no limit counts."""
    if not (request.path + "/").startswith(PROTECTED_PREFIX) or request.method == "OPTIONS":
        return None
    if request.method in ("GET", "HEAD") or request.path.endswith("/cancel"):
        return READ
    return SUBMIT


def add_headers(response):
    """RateLimit-Limit, -Remaining, -Reset on a limited response; Retry-After when it was refused."""
    current = current_app.extensions[EXTENSION].current_limit
    if current is None:
        return response
    try:
        window = current.window  # (when the oldest request leaves the window, requests left); one read
    except redis.RedisError as err:  # the limiter let the request through; the headers go without
        log.warning("rate limit headers left out, Redis failed: %s", err)
        return response
    reset_in = max(0, math.ceil(window.reset_time - time.time()))
    response.headers["RateLimit-Limit"] = str(current.limit.amount)
    response.headers["RateLimit-Remaining"] = str(window.remaining)
    response.headers["RateLimit-Reset"] = str(reset_in)
    if current.breached:
        response.headers["Retry-After"] = str(max(1, reset_in))
    return response


def describe(scope: str, limit: object) -> str:
    """A 429's message: which requests, how many, per what."""
    return (
        f"too many requests: {LIMIT_NAMES.get(scope, scope)} are limited to {limit} per API key (per client "
        "address in open mode); retry after Retry-After seconds"
    )


def _not(kind: str):
    return lambda: request_kind() != kind


def _checked(kind: str, value: str) -> bool:
    """Whether the setting sets a limit; ConfigError when it is no rate limit Flask-Limiter reads."""
    if not value.strip():
        return False
    try:
        parse_many(value)
    except ValueError as err:
        name = f"STYLEFORGE_RATE_LIMIT_{kind.upper()}"
        hint = 'use e.g. "30/minute", or "" for none'
        raise ConfigError(f"{name}={value!r} is not a rate limit: {hint}") from err
    return True
