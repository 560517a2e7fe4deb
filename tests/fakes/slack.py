"""A Slack incoming webhook (https://api.slack.com/messaging/webhooks), as a WSGI app for loopback.

Like Slack: the webhook lives at one secret path (`/services/T…/B…/<token>`) and any other path is
404 `no_service`; a body that is not a JSON object is 400 `invalid_payload`, one with neither `text`
nor `blocks` is 400 `no_text`; a message that is taken is 200 `ok`. A test may make the next
messages fail (`fail_next`), e.g. with Slack's 500 `rollup_error`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from tests.fakes.faults import FaultSchedule

__all__ = ["SlackWebhookEmulator"]


@dataclass
class _Failure:
    status: int
    body: str
    times: int


class SlackWebhookEmulator:
    def __init__(self, token: str = "xoxb-emulated-webhook-token"):
        self.path = f"/services/T00000000/B00000000/{token}"
        self.messages: list[dict[str, Any]] = []
        self.refused = 0
        self._faults: FaultSchedule[_Failure] = FaultSchedule()
        self._lock = threading.Lock()

    def fail_next(self, times: int = 1, *, status: int = 500, body: str = "rollup_error") -> None:
        self._faults.add(_Failure(status, body, times))

    def __call__(self, environ, start_response):
        status, body = self._answer(environ)
        start_response(f"{status} {'OK' if status == 200 else 'Error'}", [("Content-Type", "text/plain")])
        return [body.encode()]

    def _answer(self, environ) -> tuple[int, str]:
        if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != self.path:
            return 404, "no_service"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length)
        with self._lock:
            failure = self._faults.take(lambda _: True)
            if failure is not None:
                self.refused += 1
                return failure.status, failure.body
            try:
                message = json.loads(raw)
            except ValueError:
                return 400, "invalid_payload"
            if not isinstance(message, dict):
                return 400, "invalid_payload"
            if not message.get("text") and not message.get("blocks"):
                return 400, "no_text"
            self.messages.append(message)
        return 200, "ok"
