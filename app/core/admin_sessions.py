"""Admin page sessions, kept in the database so that they can be ended: sign-out, `reviewbridge admin
sessions clear`, a new ADMIN_TOKEN, or their end of life.

Signing in opens a session with a random id (`secrets.token_urlsafe(32)`) that only the browser's
cookie holds; the row keeps its SHA-256, a fingerprint of the ADMIN_TOKEN it was opened with, and
an absolute end (`expires_at`), which using the session never moves. A session counts while its
row exists, is not past its end, and its fingerprint is the current token's; one that does not is
deleted when it is next presented, and `prune` deletes the rest of the expired ones.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, insert, select

from app.core.db import affected, transaction
from app.core.models import AdminSession, table

__all__ = ["Opened", "end", "end_all", "is_valid", "prune", "start"]

_sessions = table(AdminSession)
_USER_AGENT_LENGTH = 120


@dataclass(frozen=True)
class Opened:
    id: str  # for the cookie only: the database never sees it
    expires_at: datetime


def start(
    engine: Engine,
    admin_token: str,
    *,
    now: datetime,
    lifetime: timedelta,
    client_address: str | None,
    user_agent: str | None,
) -> Opened:
    opened = Opened(secrets.token_urlsafe(32), now + lifetime)
    with transaction(engine) as session:
        session.execute(
            insert(_sessions).values(
                id_hash=_hash(opened.id),
                token_fingerprint=_fingerprint(admin_token),
                created_at=now,
                expires_at=opened.expires_at,
                client_address=client_address,
                user_agent=(user_agent or "")[:_USER_AGENT_LENGTH] or None,
            )
        )
    return opened


def is_valid(engine: Engine, session_id: str, admin_token: str, *, now: datetime) -> bool:
    """Whether the session is open, at its end of life or opened with another ADMIN_TOKEN (then
    its row goes: it will never count again)."""
    mine = _sessions.c.id_hash == _hash(session_id)
    current = (_sessions.c.token_fingerprint == _fingerprint(admin_token)) & (_sessions.c.expires_at > now)
    with transaction(engine) as session:
        if session.execute(select(func.count()).where(mine, current)).scalar_one():
            return True
        session.execute(delete(_sessions).where(mine))
        return False


def end(engine: Engine, session_id: str) -> None:
    with transaction(engine) as session:
        session.execute(delete(_sessions).where(_sessions.c.id_hash == _hash(session_id)))


def end_all(engine: Engine) -> int:
    """End every session (everyone signs in again); how many there were, expired ones included."""
    with transaction(engine) as session:
        return affected(session.execute(delete(_sessions)))


def prune(engine: Engine, *, now: datetime, dry_run: bool = False) -> int:
    """Delete (or count) the sessions past their end of life."""
    expired = _sessions.c.expires_at <= now
    with transaction(engine) as session:
        if dry_run:
            return session.execute(select(func.count()).where(expired)).scalar_one()
        return affected(session.execute(delete(_sessions).where(expired)))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _fingerprint(admin_token: str) -> str:
    # A one-way digest: the table never tells the token, only whether a session was opened with it.
    return hashlib.sha256(b"reviewbridge admin session\0" + admin_token.encode()).hexdigest()
