"""ReviewBridge: product reviews kept in step between Trustoo, Wix Reviews and commercetools.

`create_app` is the only place an app is built, and reads as the table of contents.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from flask import Flask
from sqlalchemy import Engine

from app import products, trustoo, wix
from app.config import Settings, SettingsError, load_settings
from app.db import make_engine
from app.metrics import Metrics
from app.models import utcnow
from app.runtime import Runtime
from app.status import queue_depth
from app.vault import Vault
from connectors.base import ReviewTarget
from connectors.commercetools import CommercetoolsConfig, CommercetoolsTarget
from connectors.trustoo_api import TrustooApi

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    environ: Mapping[str, str] | None = None,
    *,
    targets: Sequence[ReviewTarget] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Flask:
    """Build the service. `environ` replaces os.environ and `targets` the configured targets (tests)."""
    from app import admin_api, admin_page, cli, errors, health, oauth, openapi, webhooks
    from app.logs import configure_logging

    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        raise SystemExit(f"reviewbridge: configuration error: {exc}") from None
    configure_logging(settings.log_level, settings.log_format)
    for line in settings.describe():
        log.info("config: %s", line)

    app = Flask(__name__, instance_relative_config=False, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=settings.webhook_max_bytes)
    if settings.secret_key:
        app.config["SECRET_KEY"] = settings.secret_key

    engine = make_engine(settings.database_url, pool_size=settings.worker_concurrency + 4)
    vault = Vault(settings.secret_key) if settings.secret_key else None
    trustoo_api = trustoo.build_api(settings, engine, vault, clock)
    wix_api = wix.build_api(settings)
    sources = {
        "trustoo": trustoo.build_source(settings, engine, vault, trustoo_api),
        "wix": wix.build_source(settings, wix_api),
    }
    Runtime(
        settings=settings,
        engine=engine,
        vault=vault,
        sources={name: source for name, source in sources.items() if source is not None},
        targets=tuple(_review_targets(settings, engine, trustoo_api) if targets is None else targets),
        trustoo_api=trustoo_api,
        review_requests=wix.WixReviewRequests(wix_api) if wix_api else None,
        metrics=Metrics(queue_depth=lambda: queue_depth(engine)),
        clock=clock,
    ).init_app(app)

    errors.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(admin_page.bp)
    app.register_blueprint(openapi.bp)
    cli.init_app(app)
    return app


def _review_targets(settings: Settings, engine: Engine, trustoo_api: TrustooApi) -> list[ReviewTarget]:
    targets: list[ReviewTarget] = []
    if settings.commercetools_enabled:
        targets.append(_commercetools(settings, engine))
    trustoo_target = trustoo.build_target(settings, engine, trustoo_api)
    if trustoo_target is not None:
        targets.append(trustoo_target)
    return targets


def _commercetools(settings: Settings, engine: Engine) -> CommercetoolsTarget:
    config = CommercetoolsConfig(
        project_key=settings.ctp_project_key,
        client_id=settings.ctp_client_id,
        client_secret=settings.ctp_client_secret,
        api_url=settings.ctp_api_url,
        auth_url=settings.ctp_auth_url,
        scopes=settings.ctp_scopes,
        rating_scale=settings.ctp_rating_scale,
        on_source_delete=settings.ctp_on_source_delete,
        product_key_template=settings.ctp_product_key_template,
        store_review_channel=settings.ctp_store_review_channel,
    )
    return CommercetoolsTarget(
        config,
        product_map=functools.partial(products.lookup, engine, "commercetools"),
        pool_size=settings.worker_concurrency + 4,
    )
