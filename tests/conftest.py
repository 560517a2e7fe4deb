"""Fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL, an app around it.

PostgreSQL comes from TEST_DATABASE_URL (default: the local server's `test` database). Each run
creates a database of its own and drops it at the end, so runs never see each other's rows. When
the server is unreachable its tests are skipped, unless REQUIRE_POSTGRES is set (CI sets it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from app import create_app
from app.bootstrap import services_of
from app.core.db import make_engine, upgrade
from app.core.services import Services
from tests.builders import TRUSTOO_OLD_PRIVATE_TOKEN, TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN
from tests.fakes.memory_target import RecordingTarget
from tests.fakes.serving import serve_wsgi
from tests.fakes.trustoo import TrustooEmulator

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _psycopg_url(url: str):
    return make_url(url.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def postgres_admin():
    """An AUTOCOMMIT engine on the server's admin database, to create and drop databases with."""
    admin_url = _psycopg_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except Exception as exc:  # any failure to connect means "no server here"
        admin.dispose()
        message = f"PostgreSQL unreachable at {admin_url.render_as_string(hide_password=True)}: {type(exc).__name__}"
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(message + " (REQUIRE_POSTGRES is set)")
        pytest.skip(message)
    yield admin
    admin.dispose()


@contextlib.contextmanager
def scratch_database(admin: Engine, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of its own, dropped afterwards; yields its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url(postgres_admin):
    with scratch_database(postgres_admin, "reviewbridge_test") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "reviewbridge.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A migrated, empty database: a copied SQLite file, or the run's PostgreSQL database emptied."""
    if request.param == "sqlite":
        path = tmp_path / "reviewbridge.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(table.name for table in SQLModel.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    engine.dispose()
    return url


@pytest.fixture
def trustoo():
    """The Trustoo emulator, holding the test shop: the app's Open API calls go here, never out."""
    emulator = TrustooEmulator(shops={TRUSTOO_PUBLIC_TOKEN: TRUSTOO_PRIVATE_TOKEN}, retry_delays_s=(0,) * 10)
    yield emulator
    emulator.close()


@pytest.fixture
def trustoo_url(trustoo):
    with serve_wsgi(trustoo) as url:
        yield url


@pytest.fixture
def environ(database_url, trustoo_url):
    return {
        "DATABASE_URL": database_url,
        "TRUSTOO_API_URL": trustoo_url,
        "TRUSTOO_PUBLIC_TOKEN": TRUSTOO_PUBLIC_TOKEN,
        "TRUSTOO_PRIVATE_TOKEN": f"{TRUSTOO_PRIVATE_TOKEN},{TRUSTOO_OLD_PRIVATE_TOKEN}",
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "LOG_LEVEL": "WARNING",
        "RETRY_BASE_S": "0.01",
    }


@pytest.fixture
def target():
    return RecordingTarget()


@pytest.fixture
def app(environ, target):
    app = create_app(environ, targets=[target])
    app.config["TESTING"] = True
    yield app
    services_of(app).engine.dispose()


@pytest.fixture
def services(app) -> Services:
    return services_of(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def engine(services):
    return services.engine
