"""`reviewbridge accounts add|list|remove|rotate-keys`: platform accounts kept in the database, secrets
encrypted with SECRET_KEY."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from flask.cli import AppGroup

from app.cli._table import echo_rows

if TYPE_CHECKING:
    from app.core import accounts
    from app.core.services import Services


__all__ = ["accounts_group"]


def _vault(services: Services):
    if services.vault is None:
        raise click.ClickException("SECRET_KEY is not set: credentials cannot be stored encrypted without it")
    return services.vault


@click.group("accounts", cls=AppGroup)
def accounts_group() -> None:
    """Platform accounts beyond the ones the environment names."""


@accounts_group.group("add", cls=AppGroup)
def accounts_add() -> None:
    """Add an account, or replace its credentials."""


@accounts_add.command("trustoo")
@click.option("--public-token", required=True, help="The shop's public token (Trustoo admin).")
@click.option(
    "--private-token", prompt=True, hide_input=True, help="The shop's private token; asked for when left out."
)
@click.option("--label", default=None, help="A name for people, e.g. the shop's domain.")
def accounts_add_trustoo(public_token: str, private_token: str, label: str | None) -> None:
    """A Trustoo shop: its webhooks verify with its private token, and API calls sign with it."""
    from app.bootstrap import current_services
    from app.core import accounts

    services = current_services()
    accounts.add(
        services.engine,
        _vault(services),
        source="trustoo",
        account=public_token.strip(),
        secret=private_token.strip(),
        label=label,
        now=services.clock(),
    )
    click.echo(f"trustoo shop {public_token.strip()} saved (private token encrypted)")


@accounts_add.command("wix")
@click.option("--instance", required=True, help="The site's app instance id (instanceId in Wix's webhooks).")
@click.option("--label", default=None, help="A name for people, e.g. the site's domain.")
def accounts_add_wix(instance: str, label: str | None) -> None:
    """A Wix site, before (or without) its AppInstalled event: resync, reconcile and doctor then know it.
    Calls for it use the app's credentials (WIX_APP_ID, WIX_APP_SECRET); nothing secret is stored."""
    from app.bootstrap import current_services
    from app.core import accounts

    services = current_services()
    instance = instance.strip()
    if not instance:
        raise click.BadParameter("the instance id is empty", param_hint="--instance")
    accounts.add(services.engine, None, source="wix", account=instance, label=label, now=services.clock())
    click.echo(f"wix site {instance} saved")


@accounts_group.command("list")
@click.option("--source", default=None, help="Only this platform's accounts.")
@click.option("--json", "as_json", is_flag=True)
def accounts_list(source: str | None, as_json: bool) -> None:
    """The accounts, without their secrets."""
    from app.bootstrap import current_services
    from app.core import accounts

    services = current_services()
    rows = [_describe(view) for view in accounts.list_accounts(services.engine, source)]
    if services.settings.trustoo_public_token and source in (None, "trustoo"):
        rows.insert(
            0,
            {
                "source": "trustoo",
                "account": services.settings.trustoo_public_token,
                "label": "(environment)",
                "enabled": True,
                "credentials": "private token",
                "token_expires_at": None,
            },
        )
    columns = [("source", "source"), ("account", "account"), ("credentials", "credentials")]
    columns += [("label", "label"), ("enabled", "enabled"), ("token expires", "token_expires_at")]
    echo_rows(rows, columns, as_json=as_json)


def _describe(view: accounts.AccountView) -> dict:
    held = [
        name for name, present in (("private token", view.has_secret), ("oauth tokens", view.has_tokens)) if present
    ]
    if view.source == "wix":
        held.append("app credentials")  # a site is called with the app's id and secret, from the environment
    return {
        "source": view.source,
        "account": view.account,
        "label": view.label,
        "enabled": view.enabled,
        "credentials": " + ".join(held) or "none",
        "token_expires_at": view.token_expires_at.isoformat() if view.token_expires_at else None,
    }


@accounts_group.command("remove")
@click.argument("source")
@click.argument("account")
def accounts_remove(source: str, account: str) -> None:
    """Forget an account and its credentials."""
    from app.bootstrap import current_services
    from app.core import accounts

    if not accounts.remove(current_services().engine, source, account):
        raise click.ClickException(f"no {source} account {account!r} in the database")
    click.echo(f"{source} account {account} removed")


@accounts_group.command("rotate-keys")
def accounts_rotate_keys() -> None:
    """Seal every stored credential anew with SECRET_KEY; after it, SECRET_KEY_FALLBACKS can go."""
    from app.bootstrap import current_services
    from app.core import accounts

    services = current_services()
    report = accounts.reseal_all(services.engine, _vault(services), now=services.clock())
    click.echo(f"re-sealed the credentials of {report.resealed} account(s) with SECRET_KEY")
    for source, account in report.unreadable:
        click.echo(f"✗ {source} {account}: cannot be opened: {accounts.UNREADABLE_HINT}", err=True)
    if report.unreadable:
        sys.exit(1)
