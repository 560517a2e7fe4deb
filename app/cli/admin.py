"""`reviewbridge admin sessions clear`: sign everyone out of the admin page."""

from __future__ import annotations

import click
from flask.cli import AppGroup

__all__ = ["admin_group"]


@click.group("admin", cls=AppGroup)
def admin_group() -> None:
    """The admin page."""


@admin_group.group("sessions", cls=AppGroup)
def sessions_group() -> None:
    """Admin page sessions (signed-in browsers)."""


@sessions_group.command("clear")
def sessions_clear() -> None:
    """End every admin page session: each browser must sign in again."""
    from app.bootstrap import current_services
    from app.core import admin_sessions

    ended = admin_sessions.end_all(current_services().engine)
    click.echo(f"ended {ended} admin session(s); every browser signs in again")
