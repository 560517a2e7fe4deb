"""Pooled PostgreSQL connections: one that sat idle in the pool is pinged before use, so a server
restart or a proxy's idle cut costs no request; one in steady use is not (a ping is a round trip)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.core import db
from app.core.db import make_engine


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_pooled_connection_the_server_closed_while_it_was_idle_is_replaced_before_use(database_url, monkeypatch):
    monkeypatch.setattr(db, "_TRUSTED_FOR_S", 0.0)  # every connection back from the pool counts as idle
    engine, killer = make_engine(database_url, pool_size=1), make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with killer.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != backend
    finally:
        engine.dispose()
        killer.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_back_in_the_pool_a_moment_ago_is_used_without_a_ping(database_url, monkeypatch):
    engine = make_engine(database_url, pool_size=1)
    pings: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(connection) or True)
    try:
        for _ in range(3):
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        assert len(pings) == 1  # the first checkout of the new connection only
    finally:
        engine.dispose()
