"""The Flask API: create_app builds the app, its adapters and one blueprint per area."""

import logging
from collections.abc import Mapping

from flask import Flask

from api import auth, batches, events, health, jobs, limits, metrics, openapi, styles, web
from api.errors import register_error_handlers
from api.services import Services, build_services, init_app
from shared.config import Settings
from shared.errors import StyleforgeError

log = logging.getLogger("styleforge.api")


def create_app(
    config: Settings | Mapping[str, object] | None = None, *, services: Services | None = None
) -> Flask:
    """Build the API.

    Args:
        config: Settings, or a mapping of Settings fields over the environment; None reads the environment.
        services: prebuilt adapters (unit tests pass fakes); None builds the real ones from the settings.
    """
    settings = _settings(config) if services is None else services.settings
    app = Flask(__name__, static_folder=None)  # the page's files are served by the web blueprint, under /web/
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.json.sort_keys = False
    init_app(app, services or _real_services(settings))
    register_error_handlers(app)
    auth.init_auth(app)
    limits.init_limits(app)  # after auth: its key function reads the g.api_key that auth's check sets
    app.register_blueprint(health.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(styles.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(metrics.bp)
    app.after_request(metrics.count_request)
    app.register_blueprint(openapi.bp)  # last: it documents the views registered before it
    return app


def _real_services(settings: Settings) -> Services:
    built = build_services(settings)
    try:
        built.objects.ensure_bucket()
    except StyleforgeError as err:  # S3 may come up after the API; /readyz reports it meanwhile
        log.warning("could not ensure bucket %r at start: %s", settings.s3_bucket, err.message)
    return built


def _settings(config: Settings | Mapping[str, object] | None) -> Settings:
    if isinstance(config, Settings):
        return config
    return Settings.from_env().override(**dict(config or {}))
