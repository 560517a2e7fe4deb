"""Alembic environment: the app's DATABASE_URL and the SQLModel metadata.

`reviewbridge db upgrade` passes its engine in `config.attributes["engine"]`; the plain `alembic`
command builds one from the environment the same way the app does.
"""

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

import app.core.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from app.config import load_settings
from app.core.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_, obj, autogen_context):
    """Write SQLModel's UTCDateTime as the plain column type it stores, so migrations need no sqlmodel."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine(load_settings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
