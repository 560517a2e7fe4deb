"""The web app: webhooks in, health, OAuth callbacks, OpenAPI, the admin API and the admin page.

`create_app` is the only place an app is built, and reads as the table of contents.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from flask import Flask

from app import bootstrap
from app.core.models import utcnow
from connectors.base import ReviewTarget

__all__ = ["create_app"]


def create_app(
    environ: Mapping[str, str] | None = None,
    *,
    targets: Sequence[ReviewTarget] | None = None,
    clock: Callable[[], datetime] = utcnow,
    config_log_level: int = logging.INFO,
    role: bootstrap.Role = "serve",
    serve_threads: int = bootstrap.SERVE_THREADS,
) -> Flask:
    """Build the service for a process of `role`, which sizes its database pool: the Procfile's web
    passes "web"; the `reviewbridge` command its own. `environ` replaces os.environ and `targets` the
    configured targets (tests)."""
    from app.web import admin_api, admin_page, errors, health, oauth, openapi, proxies, security_headers, webhooks

    settings = bootstrap.load(environ, config_log_level=config_log_level)
    app = Flask(__name__, instance_relative_config=False, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.webhook_max_bytes, SESSION_COOKIE_SECURE=settings.session_cookie_secure
    )
    app.wsgi_app = proxies.TrustedProxies(app.wsgi_app, settings.forwarded_allow_ips)
    if settings.secret_key:
        app.config["SECRET_KEY"] = settings.secret_key
        app.config["SECRET_KEY_FALLBACKS"] = list(settings.secret_key_fallbacks)
    services = bootstrap.build_services(settings, targets=targets, clock=clock, role=role, serve_threads=serve_threads)
    bootstrap.attach(app, services)

    errors.init_app(app)
    security_headers.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(admin_page.bp)
    app.register_blueprint(openapi.bp)
    return app
