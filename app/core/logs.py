"""Logging: plain text for a terminal, one JSON object per line for a PaaS log drain.

Records may carry `event_id` (pass `extra={"event_id": ...}`); secrets are never logged, so
nothing here has to scrub them.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

__all__ = ["configure_logging"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        event_id = getattr(record, "event_id", None)
        return f"{line} [event {event_id}]" if event_id else line


class _Handler(logging.StreamHandler):
    """Ours: configuring again replaces it instead of adding a second copy of every line."""


def configure_logging(level: str, fmt: str) -> logging.StreamHandler:
    handler = _Handler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(_TextFormatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _Handler):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler reports every run of the drain job at INFO, httpx every request (a 404 in a healthy
    # setup, lines across the resync progress bar); keep those for DEBUG.
    for chatty in ("apscheduler", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return handler
