"""Logging: plain text for a terminal, one JSON object per line for a PaaS log drain.

Records may carry `event_id` (pass `extra={"event_id": ...}`); secrets are never logged, so
nothing here has to scrub them.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from app.core.printable import printable

__all__ = ["configure_logging", "json_formatter"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _TextFormatter(logging.Formatter):
    """One record, one line (and its traceback): control characters in the message, its arguments,
    the event id and an exception's message are written as escapes, so a platform's input can
    neither forge a line nor drive the terminal. (JSON lines escape them by themselves.)"""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = None  # another handler may have cached its own, unescaped, rendering
        line = super().format(record)
        event_id = getattr(record, "event_id", None)
        return f"{line} [event {printable(str(event_id))}]" if event_id else line

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei) -> str:
        # The traceback's own line breaks stay; those inside an exception's message are escaped.
        text = super().formatException(ei)
        seen: set[int] = set()
        error = ei[1]
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            message = str(error)
            if printable(message) != message:
                text = text.replace(message, printable(message))
            error = error.__cause__ or error.__context__
        return text


class _Handler(logging.StreamHandler):
    """Ours: configuring again replaces it instead of adding a second copy of every line."""


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger, message, and whatever a record carries besides
    (`event_id`; an access line's request fields, app/web/gunicorn_logs.py)."""
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure_logging(level: str, fmt: str) -> logging.StreamHandler:
    handler = _Handler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(json_formatter())
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
