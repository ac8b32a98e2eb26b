"""GET /metrics: the Prometheus exposition of this API, and the count of every HTTP request it answers.

Under gunicorn, set PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py does): each worker process then writes
its counters to files there, and a scrape adds up every process's (prometheus_client's multiprocess mode). The
backlog per queue and the running jobs are read from Redis at each scrape.

It is not public: with STYLEFORGE_METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>`
(Prometheus: `authorization: {type: Bearer, credentials_file: ...}`), compared in constant time, or gets
401. Without a token it answers 404 in required mode (off), and serves anyone only in open mode (local
experiments).
"""

import hmac
import os

from flask import Blueprint, Response, request
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.services import services
from shared.config import Settings
from shared.errors import KeyMissing, NotFound, Unauthorized
from shared.metrics import HTTP_REQUESTS, StoreCollector

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    """This API's metrics, with the backlog and running jobs read from Redis now."""
    check_scrape_token(services().settings, request.headers.get("Authorization"))
    store = CollectorRegistry(auto_describe=False)
    store.register(StoreCollector(services().store))
    body = generate_latest(_process_registry()) + generate_latest(store)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def check_scrape_token(settings: Settings, header: str | None) -> None:
    """Let a scrape through, or raise NotFound (/metrics is off) or Unauthorized (no or a wrong token)."""
    token = settings.metrics_token
    if not token:
        if settings.auth == "open":
            return
        raise NotFound("GET /metrics is off: set STYLEFORGE_METRICS_TOKEN and scrape with it as Bearer token")
    if not header:
        raise KeyMissing(
            "GET /metrics needs the scrape token: Authorization: Bearer <STYLEFORGE_METRICS_TOKEN>",
            field="authorization",
        )
    scheme, _, sent = header.strip().partition(" ")
    matches = hmac.compare_digest(sent.strip().encode(), token.encode())
    if scheme.lower() != "bearer" or not matches:
        raise Unauthorized("wrong scrape token for GET /metrics", field="authorization")


def _process_registry():
    # Multiprocess mode: a registry per scrape over every process's files. Else this process's own.
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def count_request(response: Response) -> Response:
    """After each request: one count, by route template (never the raw path), method and code."""
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    return response
