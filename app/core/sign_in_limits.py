"""The admin sign-in limit: failed sign-ins per client address, with a growing wait, in the database.

Every web process counts into the same row, so the limit holds however many there are. A few
failures are free (a person mistypes); after them each failure makes the address wait before its
next try, twice as long each time up to a cap:

    failures  1-5   6    7    8    ...  16+
    wait      0     1 s  2 s  4 s  ...  15 min

While an address waits, every sign-in from it is refused unseen, the right token included (else
the wait would stop nobody), and the refusals count for nothing. A success forgets the address;
so does a day without failures (`prune` deletes such rows).

The check reads before the token is compared and the failure is counted after, so sign-ins that
arrive together all pass the check: at most the server's threads' worth get through at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, case, delete, func, select, update

from app.core.db import affected, insert_for, transaction
from app.core.models import SignInFailure, table

__all__ = ["FORGET_AFTER", "Backoff", "Standing", "prune", "record_failure", "record_success", "standing"]

_failures = table(SignInFailure)
#: A day without a failure, and an address starts again with its free tries.
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Backoff:
    free: int = 5
    first_s: float = 1.0
    cap_s: float = 900.0

    def wait_s(self, failures: int) -> float:
        """How long an address waits after its `failures`-th failure."""
        if failures <= self.free:
            return 0.0
        return min(self.cap_s, self.first_s * 2 ** min(failures - self.free - 1, 32))


@dataclass(frozen=True)
class Standing:
    """An address with failures on record."""

    failures: int
    wait_s: float  # left to wait before it may try again; 0: it may


def standing(engine: Engine, address: str, *, now: datetime) -> Standing | None:
    """The address's failures and wait, or None when it has none on record (a sign-in needs no reset)."""
    query = select(_failures.c.failures, _failures.c.blocked_until).where(_failures.c.address == address)
    with transaction(engine) as session:
        row = session.execute(query).first()
    if row is None:
        return None
    until = row.blocked_until
    if until is None:
        return Standing(row.failures, 0.0)
    if until.tzinfo is None:  # SQLite gives back the UTC time it stored, without its zone
        until = until.replace(tzinfo=UTC)
    return Standing(row.failures, max(0.0, (until - now).total_seconds()))


def record_failure(engine: Engine, address: str, *, now: datetime, backoff: Backoff) -> float:
    """Count a failed sign-in; the wait it starts (0 while the address has free tries left)."""
    forgotten = _failures.c.last_at < now - FORGET_AFTER
    statement = insert_for(engine, _failures).values(address=address, failures=1, last_at=now, blocked_until=None)
    statement = statement.on_conflict_do_update(
        index_elements=["address"],
        set_={"failures": case((forgotten, 1), else_=_failures.c.failures + 1), "last_at": now},
    ).returning(_failures.c.failures)
    with transaction(engine) as session:
        failures = session.execute(statement).scalar_one()
        wait_s = backoff.wait_s(failures)
        if wait_s:  # in the same transaction, which holds the row: concurrent failures count one by one
            until = now + timedelta(seconds=wait_s)
            session.execute(update(_failures).where(_failures.c.address == address).values(blocked_until=until))
    return wait_s


def record_success(engine: Engine, address: str) -> None:
    with transaction(engine) as session:
        session.execute(delete(_failures).where(_failures.c.address == address))


def prune(engine: Engine, *, now: datetime, dry_run: bool = False) -> int:
    """Forget (or count) the addresses without a failure for FORGET_AFTER and no wait left."""
    stale = (_failures.c.last_at < now - FORGET_AFTER) & (
        _failures.c.blocked_until.is_(None) | (_failures.c.blocked_until <= now)
    )
    with transaction(engine) as session:
        if dry_run:
            return session.execute(select(func.count()).where(stale)).scalar_one()
        return affected(session.execute(delete(_failures).where(stale)))
