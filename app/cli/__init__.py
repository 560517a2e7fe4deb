"""The `reviewbridge` command: thin wrappers around the service's own functions.

    reviewbridge serve [--host H] [--port N]   migrations, then web + worker in one process
    reviewbridge worker                        the worker process (SIGTERM: clean stop)
    reviewbridge db upgrade|current            Alembic migrations
    reviewbridge status [--json]               queue, dead letters, last errors, rejections
    reviewbridge doctor                        configuration, database and platforms: ✓ or ✗ with the fix
    reviewbridge setup commercetools           create the Custom Type and States (idempotent)
    reviewbridge products import FILE|list     product mappings; an import releases waiting events
    reviewbridge accounts add|list|remove      platform accounts kept in the database (secrets encrypted)
    reviewbridge admin sessions clear          sign everyone out of the admin page
    reviewbridge trustoo webhooks|authorize-url  Trustoo webhook registration and OAuth platform mode
    reviewbridge wix review-requests list      the review requests made for fulfilled orders
    reviewbridge events list|show              the inbox, filtered; one event with its attempts
    reviewbridge replay ID…|FILTERS, discard ID…|FILTERS --reason TEXT   settle what the worker could not
    reviewbridge resync SOURCE, reconcile [--fix]  recover what webhooks missed; report and fix drift
    reviewbridge rollback RUN_ID               put back what one resync run wrote to commercetools

The commands are registered here, without building the app: `--help` needs no database and no
valid configuration. A command that needs the service builds it when it runs (`with_appcontext`).
`-e FILE` (`--env-file`) first adds the variables of a dotenv file (`.env.example`'s form) to the
environment, where app/config.py reads them; a variable the environment already holds wins. No file
is read unless named: the environment stays the configuration (12-factor).
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import ScriptInfo, load_dotenv, routes_command, shell_command
from sqlalchemy.exc import SQLAlchemyError

from app.cli._app import one_off_app
from app.cli.accounts import accounts_group
from app.cli.admin import admin_group
from app.cli.db import db_group
from app.cli.events import discard, events_group, replay
from app.cli.reconcile import reconcile
from app.cli.resync import resync
from app.cli.rollback import rollback
from app.cli.serve import serve, worker
from app.cli.status import doctor, status
from app.cli.targets import products_group, setup_group
from app.cli.trustoo import trustoo_group
from app.cli.wix import wix_group
from app.core.db_errors import explain

__all__ = ["cli", "main"]


class _Commands(click.Group):
    """The command group: every one-off command builds the app lazily through one ScriptInfo (a test
    runner passes its own, holding the app under test); `serve` and `worker` build their own."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any):
        extra.setdefault("obj", ScriptInfo(create_app=one_off_app, set_debug_flag=False, load_dotenv_defaults=False))
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:  # one line with the next step, not a page of traceback
            raise click.ClickException(explain(exc)) from None


def _load_env_file(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        load_dotenv(value, load_defaults=False)  # python-dotenv's parser; set variables are kept


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-e",
    "--env-file",
    type=click.Path(exists=True, dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=_load_env_file,
    help="Read variables from this file (as in .env.example) first; variables already set win.",
)
@click.version_option(package_name="reviewbridge", prog_name="reviewbridge", message="%(prog)s %(version)s")
def cli() -> None:
    """ReviewBridge: product reviews in step across Trustoo, Wix and commercetools."""


for _command in (
    serve,
    worker,
    db_group,
    status,
    doctor,
    setup_group,
    products_group,
    accounts_group,
    admin_group,
    trustoo_group,
    wix_group,
    events_group,
    replay,
    discard,
    resync,
    rollback,
    reconcile,
    shell_command,
    routes_command,
):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="reviewbridge")
