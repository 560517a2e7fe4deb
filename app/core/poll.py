"""The periodic incremental poll: every POLL_INTERVAL, each source account is read from where the
last poll began (minus the source's overlap) and fed through the pipeline, so a missed webhook is
repaired without anyone acting. A lease per account keeps it to one worker process at a time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.core import leases
from app.core.db import transaction
from app.core.models import Checkpoint, table
from app.core.resync import resync
from app.core.services import Services
from connectors.base import ReviewBridgeError

__all__ = ["poll_all"]

log = logging.getLogger(__name__)
_checkpoints = table(Checkpoint)
NAME = "poll"


def poll_all(
    services: Services,
    *,
    holder: str,
    interval_s: float,
) -> int:
    """Poll every account whose lease we get; return how many were polled."""
    polled = 0
    for name, source in services.review_sources().items():
        for account in services.accounts_of(name):
            lease = f"{NAME}:{name}:{account}"
            if not leases.acquire(services.engine, lease, holder, now=services.clock(), ttl_s=interval_s):
                continue
            try:
                _poll(services, source, account, interval_s)
                polled += 1
            except ReviewBridgeError as exc:
                log.warning("poll of %s %s failed: %s", name, account, exc)
    return polled


def _poll(services: Services, source, account: str, interval_s: float) -> None:
    started = services.clock()
    since = _last_start(services, source.name, account) or started - timedelta(seconds=interval_s)
    report = resync(services, source, account, since=since, restart=True, name=NAME)
    with transaction(services.engine) as session:
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


def _last_start(services: Services, source: str, account: str) -> datetime | None:
    with transaction(services.engine) as session:
        return session.execute(
            select(_checkpoints.c.since).where(
                _checkpoints.c.source == source,
                _checkpoints.c.account == account,
                _checkpoints.c.name == NAME,
            )
        ).scalar()
