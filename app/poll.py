"""The periodic incremental poll: every POLL_INTERVAL, each source account is read from where the
last poll began (minus the source's overlap) and fed through the pipeline, so a missed webhook is
repaired without anyone acting. A lease per account keeps it to one worker process at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app import leases
from app.db import transaction
from app.models import Checkpoint
from app.pipeline import Collaborators
from app.resync import resync
from connectors.base import ReviewBridgeError

__all__ = ["poll_all"]

log = logging.getLogger(__name__)
_checkpoints = Checkpoint.__table__
NAME = "poll"


def poll_all(
    deps: Collaborators,
    sources: Mapping[str, object],
    accounts_of: Callable[[str], list[str]],
    *,
    holder: str,
    interval_s: float,
) -> int:
    """Poll every account whose lease we get; return how many were polled."""
    polled = 0
    for name, source in sources.items():
        if not hasattr(source, "iter_pages"):
            continue
        for account in accounts_of(name):
            lease = f"{NAME}:{name}:{account}"
            if not leases.acquire(deps.engine, lease, holder, now=deps.clock(), ttl_s=interval_s):
                continue
            try:
                _poll(deps, source, account, interval_s)
                polled += 1
            except ReviewBridgeError as exc:
                log.warning("poll of %s %s failed: %s", name, account, exc)
    return polled


def _poll(deps: Collaborators, source, account: str, interval_s: float) -> None:
    started = deps.clock()
    since = _last_start(deps, source.name, account) or started - timedelta(seconds=interval_s)
    report = resync(deps, source, account, since=since, restart=True, name=NAME)
    with transaction(deps.engine) as session:
        session.execute(
            update(_checkpoints)
            .where(
                _checkpoints.c.source == source.name,
                _checkpoints.c.account == account,
                _checkpoints.c.name == NAME,
            )
            .values(since=started)
        )
    changed = {word: count for word, count in report.counts.items() if word not in ("seen", "unchanged", "stale")}
    log.info(
        "poll of %s %s: %d seen%s",
        source.name,
        account,
        report.seen,
        "".join(f", {count} {word}" for word, count in changed.items()),
    )


def _last_start(deps: Collaborators, source: str, account: str) -> datetime | None:
    with transaction(deps.engine) as session:
        return session.execute(
            select(_checkpoints.c.since).where(
                _checkpoints.c.source == source,
                _checkpoints.c.account == account,
                _checkpoints.c.name == NAME,
            )
        ).scalar()
