"""A run that the command itself executes (resync, rollback): a row of the `run` table like the admin
page's, so that it has an id, shows on the page, and no worker claims it while the command works."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from app.core.runner import Watch
    from app.core.runs import Run
    from app.core.services import Services

__all__ = ["run_here"]


def run_here(
    services: Services, kind: str, source: str, account: str, options: Mapping[str, Any], *, watch: Watch
) -> tuple[Run, str | None]:
    """Start the run as this process's own and execute it to its end; the run and its error, if any.
    Ctrl-C ends it as failed (a resync resumes from its checkpoint next time)."""
    from app.core import runner, runs

    holder = f"cli:{socket.gethostname()[:36]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    try:
        run = runs.start(services.engine, kind, source, account, options, holder=holder, now=services.clock())
    except runs.Busy:
        raise click.ClickException(
            f"a {kind} of {source} {account} is queued or running already; wait for it to end"
        ) from None
    try:
        error = runner.execute(services, run, holder, stopping=threading.Event(), watch=watch)
    except KeyboardInterrupt:
        runner.give_up(services, run.id, holder, "interrupted (Ctrl-C)")
        raise
    return run, error
