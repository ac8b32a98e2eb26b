"""API keys on the HTTP edge: every /v1 request names its tenant with `Authorization: Bearer sf_...`.

`STYLEFORGE_AUTH=required` (the default) checks the key on every /v1 request, afresh (a revoked key fails on
its next request); the health checks, /openapi.json and the web page's own files stay public (the
page's calls to /v1 carry the key it keeps); /metrics takes its own scrape token (api/metrics.py). `open`
checks nothing and names every caller `anonymous`.
"""

import logging

from flask import Flask, g, request

from api.services import services
from shared.errors import ConfigError, KeyMissing, Unauthorized

log = logging.getLogger("styleforge.api")

ANONYMOUS = "anonymous"  # the owner of every record made in open mode
PROTECTED_PREFIX = "/v1/"
SCHEME = "Bearer"


def init_auth(app: Flask) -> None:
    """Check keys before every /v1 request (required mode), or warn once that the API is open."""
    svc = app.extensions["styleforge"]
    if svc.settings.auth == "open":
        log.warning(
            "STYLEFORGE_AUTH=open: the API checks no API key and records every job as %r; "
            "for local experiments only, never expose it",
            ANONYMOUS,
        )
        return
    if svc.api_keys is None:
        raise ConfigError("STYLEFORGE_AUTH=required needs a key store (build the services with api_keys)")
    app.before_request(authenticate)


def authenticate() -> None:
    """Before a /v1 request: set g.api_key (the key's record) from its header, or raise Unauthorized (401)."""
    if not (request.path + "/").startswith(PROTECTED_PREFIX):
        return
    g.api_key = services().api_keys.authenticate(bearer_token(request.headers.get("Authorization")))


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; Unauthorized when there is none."""
    if not header:
        raise KeyMissing(
            "an API key is required: send Authorization: Bearer sf_... (styleforge keys create)",
            field="authorization",
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not token.strip():
        raise Unauthorized("the Authorization header must be: Bearer sf_<id>_<secret>", field="authorization")
    return token.strip()


def current_tenant() -> str:
    """The tenant the request's key names; `anonymous` in open mode (the owner of what it creates)."""
    record = g.get("api_key")
    return record.tenant if record is not None else ANONYMOUS
