"""gunicorn's own log lines as JSON, like the app's, when LOG_FORMAT=json (gunicorn.conf.py names the class).

gunicorn writes its error log (start-up, workers booting and exiting, a request that failed) and its
access log through handlers and formats of its own, outside the app's logging: a log drain would get
the app's lines as JSON and gunicorn's as text it cannot parse. Here both use the app's JSON
formatter, and an access line carries the request's fields one by one instead of Apache's line: the
client's address, method, path (without the query string, which an OAuth callback's code travels in),
protocol, status, bytes sent, referrer, user agent and duration in seconds. `access_log_format` is
then unused. With LOG_FORMAT=text gunicorn keeps its own logger and formats.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from app.core.logs import json_formatter

__all__ = ["JsonLogger"]


class JsonLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(json_formatter())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        fields = {
            "remote_addr": environ.get("REMOTE_ADDR"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "protocol": environ.get("SERVER_PROTOCOL"),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "referrer": environ.get("HTTP_REFERER"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "duration": request_time.seconds + request_time.microseconds / 1_000_000,
        }
        # None of these names is one of LogRecord's own, which `extra` may not replace.
        self.access_log.info("%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields)
