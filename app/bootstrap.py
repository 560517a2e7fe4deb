"""The composition root: settings in, one `Services` and the worker out.

The web app (app/web), the `reviewbridge` command (app/cli), the tests and the benchmarks all
build through here, so the service is wired in one place. A web app carries its services; views
reach them with `current_services()`, everything else with `services_of(app)`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Literal

from flask import Flask, current_app
from sqlalchemy import Engine

from app.config import SOURCES, Settings, SettingsError, load_settings
from app.core import alerts, products, trustoo, wix
from app.core.db import make_engine
from app.core.logs import configure_logging
from app.core.metrics import Metrics
from app.core.models import utcnow
from app.core.poll import poll_all
from app.core.rate_limits import Rate, SharedRateLimiter
from app.core.services import Services
from app.core.status import account_gauges, queue_depth
from app.core.vault import Vault
from app.core.worker import Worker, scheduler_threads
from connectors.alert_webhook import AlertWebhook
from connectors.base import ReviewTarget
from connectors.commercetools import CommercetoolsTarget
from connectors.commercetools_api import CommercetoolsConfig
from connectors.trustoo_api import TrustooApi

__all__ = [
    "SERVE_THREADS",
    "SPARE_CONNECTIONS",
    "Role",
    "attach",
    "build_services",
    "build_worker",
    "current_services",
    "database_threads",
    "load",
    "services_of",
]

_EXTENSION = "reviewbridge"
log = logging.getLogger(__name__)

#: What a process does, which decides how many database connections it may open (README, Scaling):
#: web (a gunicorn worker of the Procfile's web), worker, serve (web and worker in one) or a one-off command.
Role = Literal["web", "worker", "serve", "command"]
#: `reviewbridge serve`'s web threads unless --threads says otherwise.
SERVE_THREADS = 8
#: Connections a process may open beyond its threads that use the database: the main thread's (a
#: worker's start and stop) and one more, so that a thread counted short waits for none.
SPARE_CONNECTIONS = 2


#: A worker process's own connection, outside its pool, on which it listens for new events (PostgreSQL).
LISTENING_CONNECTIONS = 1


def most_connections(settings: Settings, role: Role, *, serve_threads: int = SERVE_THREADS) -> int:
    """The database connections a process of `role` opens at most: a PostgreSQL plan must hold every
    process's (README, Scaling)."""
    listening = LISTENING_CONNECTIONS if role in ("worker", "serve") else 0
    return database_threads(settings, role, serve_threads=serve_threads) + SPARE_CONNECTIONS + listening


def database_threads(settings: Settings, role: Role, *, serve_threads: int = SERVE_THREADS) -> int:
    """The threads of a process that may each hold a database connection at once: its pool's size."""
    worker = scheduler_threads(settings.worker_concurrency) + 1  # and a run's heartbeat (app/core/runner.py)
    if role == "web":
        return settings.web_threads  # each request holds one connection, in one of the app's threads
    if role == "worker":
        return worker
    if role == "serve":
        return serve_threads + worker
    return 2  # a one-off command: its own thread, and a resync's heartbeat


def load(environ: Mapping[str, str] | None = None, *, config_log_level: int = logging.INFO) -> Settings:
    """Read the settings (`environ` replaces os.environ), set up logging and log what was read.

    The processes that run the service log their configuration at INFO; one-off commands at DEBUG."""
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        raise SystemExit(f"reviewbridge: configuration error: {exc}") from None
    configure_logging(settings.log_level, settings.log_format)
    announce(settings, config_log_level)
    return settings


def announce(settings: Settings, level: int = logging.INFO) -> None:
    for line in settings.describe():
        log.log(level, "config: %s", line)


def build_services(
    settings: Settings,
    *,
    targets: Sequence[ReviewTarget] | None = None,
    clock: Callable[[], datetime] = utcnow,
    role: Role = "serve",
    serve_threads: int = SERVE_THREADS,
) -> Services:
    """Every collaborator the service needs, for a process of `role`. `targets` replaces the configured
    targets (tests)."""
    engine = make_engine(
        settings.database_url,
        pool_size=database_threads(settings, role, serve_threads=serve_threads),
        max_overflow=SPARE_CONNECTIONS,
    )
    vault = Vault(settings.secret_key, settings.secret_key_fallbacks) if settings.secret_key else None
    trustoo_api = trustoo.build_api(settings, engine, vault, clock)
    wix_api = wix.build_api(settings, engine)
    sources = {
        "trustoo": trustoo.build_source(settings, engine, vault, trustoo_api),
        "wix": wix.build_source(settings, wix_api),
    }
    return Services(
        settings=settings,
        engine=engine,
        vault=vault,
        sources={name: source for name, source in sources.items() if source is not None},
        targets=tuple(_review_targets(settings, engine, trustoo_api) if targets is None else targets),
        trustoo_api=trustoo_api,
        review_requests=wix.WixReviewRequests(wix_api) if wix_api else None,
        metrics=Metrics(
            queue_depth=lambda: queue_depth(engine),
            accounts=lambda: account_gauges(engine, now=clock()),
            multiprocess_dir=settings.prometheus_multiproc_dir,
        ),
        clock=clock,
        routes=settings.routes_by_source(),
        review_request_delay_s=settings.wix_review_request_delay_s,
        max_attempts=settings.max_attempts,
        retry_base_s=settings.retry_base_s,
        retry_cap_s=settings.retry_cap_s,
    )


def build_worker(services: Services) -> Worker:
    settings = services.settings
    return Worker(
        services,
        concurrency=settings.worker_concurrency,
        lease_s=settings.lease_s,
        drain_interval_s=settings.drain_interval_s,
        recheck_waiting_s=settings.product_recheck_s,
        poll=lambda holder: poll_all(services, holder=holder, interval_s=settings.poll_interval_s),
        poll_interval_s=settings.poll_interval_s,
        retention_days=settings.retention_days,
        alert_check=_alert_check(services, settings.alert_webhook_url) if settings.alert_webhook_url else None,
    )


def _alert_check(services: Services, url: str) -> Callable[[str], int]:
    settings, webhook = services.settings, AlertWebhook(url)
    rules = alerts.Rules(
        sources=SOURCES,
        pending_age_s=settings.alert_pending_age_s,
        rejected=settings.alert_signature_failures,
        rejected_window_s=settings.alert_signature_window_s,
        min_interval_s=settings.alert_min_interval_s,
        public_url=settings.public_url,
    )

    def check(holder: str) -> int:
        return alerts.check(services.engine, webhook, rules, holder=holder, now=services.clock())

    return check


def attach(app: Flask, services: Services) -> None:
    app.extensions[_EXTENSION] = services


def services_of(app: Flask) -> Services:
    services: Services = app.extensions[_EXTENSION]
    return services


def current_services() -> Services:
    """The services of the app handling the current request or command."""
    return services_of(current_app)


def _review_targets(settings: Settings, engine: Engine, trustoo_api: TrustooApi) -> list[ReviewTarget]:
    targets: list[ReviewTarget] = []
    commercetools = _commercetools(settings, engine)
    if commercetools is not None:
        targets.append(commercetools)
    trustoo_target = trustoo.build_target(settings, engine, trustoo_api)
    if trustoo_target is not None:
        targets.append(trustoo_target)
    return targets


def _commercetools(settings: Settings, engine: Engine) -> CommercetoolsTarget | None:
    key, client_id, client_secret = settings.ctp_project_key, settings.ctp_client_id, settings.ctp_client_secret
    if not (key and client_id and client_secret):
        return None
    config = CommercetoolsConfig(
        project_key=key,
        client_id=client_id,
        client_secret=client_secret,
        api_url=settings.ctp_api_url,
        auth_url=settings.ctp_auth_url,
        scopes=settings.ctp_scopes,
        rating_scale=settings.ctp_rating_scale,
        on_source_delete=settings.ctp_on_source_delete,
        product_key_template=settings.ctp_product_key_template,
        store_review_channel=settings.ctp_store_review_channel,
    )
    rate = settings.ctp_rate_limit
    return CommercetoolsTarget(
        config,
        product_map=functools.partial(products.lookup, engine, "commercetools"),
        pool_size=settings.worker_concurrency + 4,
        # A second's worth at once: commercetools publishes no limit to shape a burst by.
        limiter=SharedRateLimiter(engine, "commercetools", Rate(rate, burst=max(1.0, rate))) if rate else None,
    )
