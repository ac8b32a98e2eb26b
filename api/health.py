"""Liveness and readiness."""

from flask import Blueprint, jsonify

from api.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Redis and the object store are reachable."""
    checks = {"redis": _check(services().store.ping), "s3": _check(services().objects.ping)}
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503


def _check(probe) -> str:
    try:
        probe()
    except Exception as err:  # readiness reports, never raises
        return f"error: {err}"
    return "ok"
