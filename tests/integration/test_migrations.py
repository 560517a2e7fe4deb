"""The schema comes only from migrations, and they agree with the models."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import app.core.models  # noqa: F401
from app.core import db


def test_models_and_migrations_agree(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_migrations_leave_the_database_at_head(engine):
    assert db.current_revision(engine) == db.head_revision(engine)


def test_upgrade_twice_is_harmless(engine):
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision(engine)
