"""`reviewbridge db upgrade|current`: the schema, by Alembic migrations shipped with the package."""

from __future__ import annotations

import click
from flask.cli import AppGroup

__all__ = ["db_group"]


@click.group("db", cls=AppGroup)
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from app.bootstrap import current_services
    from app.core import db

    services = current_services()
    db.upgrade(services.engine, revision)
    click.echo(f"database at revision {db.current_revision(services.engine)}")


@db_group.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one."""
    from app.bootstrap import current_services
    from app.core import db

    services = current_services()
    click.echo(f"current: {db.current_revision(services.engine)}  head: {db.head_revision(services.engine)}")
