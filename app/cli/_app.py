"""How the `reviewbridge` command builds the service: each process with its own role, which sizes its
database pool (README, Scaling)."""

from __future__ import annotations

import logging

from flask import Flask

__all__ = ["one_off_app", "serve_app", "worker_app"]


def one_off_app() -> Flask:
    from app.web import create_app

    # One-off commands keep the configuration lines out of their output; serve, worker and doctor
    # log them at INFO themselves.
    return create_app(role="command", config_log_level=logging.DEBUG)


def serve_app(threads: int) -> Flask:
    from app.web import create_app

    return create_app(role="serve", serve_threads=threads, config_log_level=logging.DEBUG)


def worker_app() -> Flask:
    from app.web import create_app

    return create_app(role="worker", config_log_level=logging.DEBUG)
