"""The sign-in limit (app/core/sign_in_limits.py) at the door of the admin page and the admin API.

Both count into the same rows, by `request.remote_addr` (the client's address as a trusted proxy
reports it, app/web/proxies.py): wrong tokens on the sign-in form and wrong bearer tokens alike.
"""

from __future__ import annotations

import logging
import math

from flask import request

from app.core import sign_in_limits
from app.core.services import Services
from app.core.sign_in_limits import Standing

__all__ = ["TooManyAttempts", "admit", "failed", "succeeded"]

log = logging.getLogger(__name__)
_BACKOFF = sign_in_limits.Backoff()


class TooManyAttempts(Exception):
    """The address must wait before it may sign in again: answer 429 with this message and Retry-After."""

    def __init__(self, wait_s: float):
        self.retry_after = str(max(1, math.ceil(wait_s)))
        super().__init__(
            f"Too many failed sign-ins from your address: try again in {self.retry_after} s. Until then "
            f"every sign-in from it is refused, even one with the right token."
        )


def admit(services: Services) -> Standing | None:
    """Let the sign-in be tried, or raise TooManyAttempts (logged); what succeeded/failed need back."""
    address = _address()
    standing = sign_in_limits.standing(services.engine, address, now=services.clock())
    if standing is not None and standing.wait_s > 0:
        log.warning(
            "admin sign-in: refused %s %s from %s unchecked: %d failed sign-ins, it must wait %.0f s more",
            request.method,
            request.path,
            address,
            standing.failures,
            standing.wait_s,
        )
        raise TooManyAttempts(standing.wait_s)
    return standing


def failed(services: Services) -> float:
    """Count a wrong token; the wait it starts (0 while the address has free tries left)."""
    return sign_in_limits.record_failure(services.engine, _address(), now=services.clock(), backoff=_BACKOFF)


def succeeded(services: Services, standing: Standing | None) -> None:
    if standing is not None:  # failures on record: a success forgets them
        sign_in_limits.record_success(services.engine, _address())


def _address() -> str:
    return request.remote_addr or "unknown"
