"""How the `reviewbridge` command builds the service: each process with its own role (which sizes its
database pool), and the embedded mode's kept ADMIN_TOKEN and SECRET_KEY where they belong.

`serve` makes and keeps them (app/config_instance.py); a one-off command run against the same SQLite
database uses what `serve` kept, so that `accounts add` seals with the key `serve` opens with; `worker`,
a Procfile process, never does either (on a PaaS, app.json generates both).
"""

from __future__ import annotations

import logging

from flask import Flask

from app.config import KeptSecrets, SettingsError, kept_secrets

__all__ = ["one_off_app", "serve_app", "worker_app"]


def one_off_app() -> Flask:
    from app.web import create_app

    # One-off commands keep the configuration lines out of their output; serve, worker and doctor
    # log them at INFO themselves.
    return create_app(_kept(create=False).environ, role="command", config_log_level=logging.DEBUG)


def serve_app(threads: int) -> tuple[Flask, KeptSecrets]:
    from app.web import create_app

    kept = _kept(create=True)
    app = create_app(kept.environ, role="serve", serve_threads=threads, config_log_level=logging.DEBUG)
    return app, kept


def worker_app() -> Flask:
    from app.web import create_app

    return create_app(role="worker", config_log_level=logging.DEBUG)


def _kept(*, create: bool) -> KeptSecrets:
    try:
        return kept_secrets(create=create)
    except SettingsError as exc:  # as bootstrap.load says it: one line, no traceback
        raise SystemExit(f"reviewbridge: configuration error: {exc}") from None
