"""The admin sign-in store on both databases: sessions (app/core/admin_sessions.py) and failed
sign-ins (app/core/sign_in_limits.py), and their share of `retention.prune`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.core import admin_sessions, retention, sign_in_limits
from app.core.db import transaction
from app.core.models import AdminSession, SignInFailure, table

TOKEN = "admin-token-7Hq2Lx9Vb4Nc8Rt3Wz6Ym1"
HOUR = timedelta(hours=1)
BACKOFF = sign_in_limits.Backoff()


def _start(engine, now, lifetime=12 * HOUR, token=TOKEN) -> str:
    opened = admin_sessions.start(
        engine, token, now=now, lifetime=lifetime, client_address="198.51.100.7", user_agent="x" * 500
    )
    return opened.id


def _count(engine, model) -> int:
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(table(model))).scalar_one()


def test_admin_session_counts_until_its_end_and_is_deleted_when_presented_after_it(engine, clock):
    session_id = _start(engine, clock())
    assert admin_sessions.is_valid(engine, session_id, TOKEN, now=clock() + 11 * HOUR)
    assert not admin_sessions.is_valid(engine, session_id, TOKEN, now=clock() + 12 * HOUR)
    assert _count(engine, AdminSession) == 0


def test_admin_session_opened_with_another_admin_token_never_counts_again(engine, clock):
    session_id = _start(engine, clock(), token="an-older-admin-token-Wz6Ym1Hq2Lx9Vb4")
    assert not admin_sessions.is_valid(engine, session_id, TOKEN, now=clock())
    assert not admin_sessions.is_valid(engine, session_id, "an-older-admin-token-Wz6Ym1Hq2Lx9Vb4", now=clock())


def test_admin_session_unknown_id_does_not_count(engine, clock):
    _start(engine, clock())
    assert not admin_sessions.is_valid(engine, "made-up", TOKEN, now=clock())
    assert _count(engine, AdminSession) == 1


def test_admin_session_keeps_a_short_user_agent(engine, clock):
    _start(engine, clock())
    with transaction(engine) as session:
        assert len(session.execute(select(AdminSession.user_agent)).scalar_one()) == 120


def test_sign_in_failures_count_one_by_one_and_set_the_wait(engine, clock):
    waits = [sign_in_limits.record_failure(engine, "a", now=clock(), backoff=BACKOFF) for _ in range(7)]
    assert waits == [0, 0, 0, 0, 0, 1, 2]
    assert sign_in_limits.standing(engine, "a", now=clock()) == sign_in_limits.Standing(7, 2.0)
    assert sign_in_limits.standing(engine, "b", now=clock()) is None


def test_sign_in_failure_a_day_after_the_last_one_starts_the_count_again(engine, clock):
    for _ in range(7):
        sign_in_limits.record_failure(engine, "a", now=clock(), backoff=BACKOFF)
    later = clock() + sign_in_limits.FORGET_AFTER + HOUR
    assert sign_in_limits.record_failure(engine, "a", now=later, backoff=BACKOFF) == 0
    assert sign_in_limits.standing(engine, "a", now=later) == sign_in_limits.Standing(1, 0.0)


def test_prune_deletes_ended_admin_sessions_and_day_old_sign_in_failures_only(engine, clock):
    now = clock()
    _start(engine, now - 13 * HOUR)  # ended an hour ago
    kept_session = _start(engine, now - 11 * HOUR)
    sign_in_limits.record_failure(engine, "yesterday", now=now - 25 * HOUR, backoff=BACKOFF)
    sign_in_limits.record_failure(engine, "today", now=now - HOUR, backoff=BACKOFF)

    counted = retention.prune(engine, now=now, older_than_days=30, dry_run=True)
    report = retention.prune(engine, now=now, older_than_days=30)

    assert (
        (counted.admin_sessions, counted.sign_in_failures) == (report.admin_sessions, report.sign_in_failures) == (1, 1)
    )
    assert admin_sessions.is_valid(engine, kept_session, TOKEN, now=now)
    with transaction(engine) as session:
        assert list(session.execute(select(SignInFailure.address)).scalars()) == ["today"]
