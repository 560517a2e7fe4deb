"""The database: one engine per app, short explicit transactions, Alembic for the schema.

SQLite (the embedded default) runs in WAL mode and takes its write lock when a transaction
begins (`BEGIN IMMEDIATE`), so concurrent threads wait on `busy_timeout` instead of failing
with "database is locked" halfway through. PostgreSQL needs nothing special.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Result,
    Table,
    create_engine,
    event,
    select,
    tuple_,
)
from sqlalchemy import exc as exc_module
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql import FromClause
from sqlmodel import Session

__all__ = [
    "accounts_in",
    "affected",
    "alembic_config",
    "current_revision",
    "head_revision",
    "insert_for",
    "make_engine",
    "transaction",
    "upgrade",
    "writing",
]

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(database_url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> Engine:
    """`pool_size` connections kept open and `max_overflow` more opened when they are all in use (as many
    again by default); PostgreSQL counts every one against its connection limit. SQLite needs no pool."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    overflow = pool_size if max_overflow is None else max_overflow
    engine = create_engine(url, pool_size=pool_size, max_overflow=overflow)
    _configure_postgresql(engine)
    _ping_after_idle(engine)
    return engine


#: A pooled connection used this recently is taken to be alive; an older one is pinged first.
_TRUSTED_FOR_S = 5.0


def _ping_after_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, only for connections that sat idle: a ping is a round trip, and on
    the intake it cost as much as the insert. A connection in steady use learns of a restarted server
    from its next statement, which fails, and SQLAlchemy then renews the whole pool; one that waited
    in the pool (where a server restart or a proxy's idle cut finds it) is pinged before use."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get("checked_in", 0.0) < _TRUSTED_FOR_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)  # what pool_pre_ping runs
        except Exception as exc:  # the driver's own error for a dead connection
            raise exc_module.DisconnectionError() from exc  # the pool replaces it and checks out anew


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Our statements are short lookups through indexes, but the planner's cost estimate for the
        # claim (a subquery per candidate) crosses jit_above_cost once the inbox has statistics:
        # JIT then compiled for 750 ms to run a claim that takes under one.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.autocommit = autocommit


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Hand transaction control to SQLAlchemy's "begin" below (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # On the driver's connection: through exec_driver_sql this cost more than the insert it guards.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE")


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One short unit of work: commit at the end of the block, roll back on any error."""
    with _one_writer(engine), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A pooled connection for the intake's one statement, committed when the block ends: `transaction`
    without the ORM Session, whose unit of work a delivery does not need and which cost a third of its
    time. On PostgreSQL the statement commits by itself (autocommit): one round trip, where BEGIN,
    the statement and COMMIT took three; one statement is one transaction all the same. (On SQLite,
    switching a connection to autocommit and back costs more than the BEGIN it saves.)"""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
        return
    with _one_writer(engine), engine.begin() as connection:
        yield connection


class _SqliteWriter:
    """On SQLite, writers take turns here before BEGIN IMMEDIATE: this process's threads on a lock,
    and the processes sharing the file (the web's workers, the worker) on an flock of `<db>.lock`.
    SQLite lets one writer in at a time anyway, but its busy handler makes the others sleep and
    retry (1, 2, 5, 10 … ms), while these hand over at once: with 16 drain threads that wait was a
    fifth of the time, and between two web workers it halved their rate. Reentrant, so a
    transaction opened inside another behaves as before."""

    def __init__(self, database: str):
        self._threads = threading.RLock()
        self._depth = 0
        # Opened by each process itself: an flock belongs to the open file, which a fork would share.
        self._file = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600) if database != ":memory:" else None

    def __enter__(self) -> None:
        self._threads.acquire()
        self._depth += 1
        if self._depth == 1 and self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._threads.release()
                raise

    def __exit__(self, *_exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()


_sqlite_writers: dict[tuple[str, int], _SqliteWriter] = {}  # by database and process
_sqlite_writers_guard = threading.Lock()


def _one_writer(engine: Engine) -> contextlib.AbstractContextManager:
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    database = engine.url.database or ":memory:"
    with _sqlite_writers_guard:
        writer = _sqlite_writers.get((database, os.getpid()))
        if writer is None:
            writer = _sqlite_writers[database, os.getpid()] = _SqliteWriter(database)
        return writer


def affected(result: Result) -> int:
    """The rows an UPDATE or DELETE touched (its Result is a CursorResult; the typing says less)."""
    return cast(CursorResult, result).rowcount


def insert_for(engine: Engine, table: Table):
    """An INSERT that knows ON CONFLICT, in the engine's own dialect."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# --- migrations ----------------------------------------------------------------------------


def _migrations_dir() -> Path:
    # The `migrations` package: the checkout's folder, or the copy a wheel installed beside `app`.
    return Path(str(resources.files("migrations")))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def accounts_in(
    dialect: str, rows: Table, where: Callable[[FromClause], ColumnElement[bool]], name: str = "accounts"
) -> CTE:
    """(source, account) once for each account with a row of `rows` that `where` keeps, read from
    an index that leads with (source, account) without visiting every row of it.

    SQLite answers DISTINCT on an index's leading columns by skipping from one value to the next.
    PostgreSQL would read every entry, so there the skip is written out: a recursive query that
    seeks the next account after the one before (a "loose index scan"). `where` is given the table
    (or its alias) to ask about, as a partial index's predicate must be named to be used."""
    if dialect != "postgresql":
        return select(rows.c.source, rows.c.account).where(where(rows)).distinct().cte(name)
    first = select(rows.c.source, rows.c.account).where(where(rows)).order_by(rows.c.source, rows.c.account).limit(1)
    start = first.subquery()
    found = select(start.c.source, start.c.account).cte(name, recursive=True)
    following = rows.alias("following")
    next_id = (
        select(following.c.id)
        .where(
            where(following),
            tuple_(following.c.source, following.c.account) > tuple_(found.c.source, found.c.account),
        )
        .order_by(following.c.source, following.c.account)
        .limit(1)
        .scalar_subquery()
    )
    step = select(rows.c.source, rows.c.account).select_from(found.join(rows, rows.c.id == next_id))
    return found.union_all(step)
