"""Named leases in the database: one holder at a time across every worker process.

A periodic job takes the lease for its run; another process that comes by meanwhile skips it.
A holder that dies loses the lease when it runs out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete

from app.core.db import insert_for, transaction
from app.core.models import Lease, table

__all__ = ["acquire", "release"]

_leases = table(Lease)


def acquire(engine: Engine, name: str, holder: str, *, now: datetime, ttl_s: float) -> bool:
    """Take the lease (or renew our own); False while someone else holds it. One statement."""
    until = now + timedelta(seconds=ttl_s)
    statement = insert_for(engine, _leases).values(name=name, holder=holder, until=until)
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": holder, "until": until},
        where=(_leases.c.until < now) | (_leases.c.holder == holder),
    ).returning(_leases.c.name)
    with transaction(engine) as session:
        return session.execute(statement).first() is not None


def release(engine: Engine, name: str, holder: str) -> None:
    with transaction(engine) as session:
        session.execute(delete(_leases).where(_leases.c.name == name, _leases.c.holder == holder))
