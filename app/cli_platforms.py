"""Platform commands: `reviewbridge accounts …` (accounts kept in the database, secrets encrypted),
`reviewbridge trustoo …` (webhook registration, OAuth) and `reviewbridge wix …` (review requests)."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app import accounts, review_requests, trustoo
from app.runtime import Runtime, runtime
from connectors.base import TargetError

__all__ = ["accounts_group", "trustoo_group", "wix_group"]


def _vault(rt: Runtime):
    if rt.vault is None:
        raise click.ClickException("SECRET_KEY is not set: credentials cannot be stored encrypted without it")
    return rt.vault


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
    rt = runtime()
    accounts.add(
        rt.engine,
        _vault(rt),
        source="trustoo",
        account=public_token.strip(),
        secret=private_token.strip(),
        label=label,
        now=rt.clock(),
    )
    click.echo(f"trustoo shop {public_token.strip()} saved (private token encrypted)")


@accounts_group.command("list")
@click.option("--source", default=None, help="Only this platform's accounts.")
@click.option("--json", "as_json", is_flag=True)
def accounts_list(source: str | None, as_json: bool) -> None:
    """The accounts, without their secrets."""
    rt = runtime()
    rows = [_describe(view) for view in accounts.list_accounts(rt.engine, source)]
    if rt.settings.trustoo_public_token and source in (None, "trustoo"):
        rows.insert(
            0,
            {
                "source": "trustoo",
                "account": rt.settings.trustoo_public_token,
                "label": "(environment)",
                "enabled": True,
                "credentials": "private token",
                "token_expires_at": None,
            },
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['source']:8} {row['account']:40} {row['credentials']:24} {row['label'] or ''}"
            + ("" if row["enabled"] else "  (disabled)")
        )


def _describe(view: accounts.AccountView) -> dict:
    held = [
        name for name, present in (("private token", view.has_secret), ("oauth tokens", view.has_tokens)) if present
    ]
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
    if not accounts.remove(runtime().engine, source, account):
        raise click.ClickException(f"no {source} account {account!r} in the database")
    click.echo(f"{source} account {account} removed")


@click.group("trustoo", cls=AppGroup)
def trustoo_group() -> None:
    """Trustoo: webhook registration and OAuth platform mode."""


def _shop(rt: Runtime, shop: str | None) -> str:
    shop = shop or rt.settings.trustoo_public_token
    if not shop:
        raise click.ClickException("name the shop with --shop PUBLIC_TOKEN (no TRUSTOO_PUBLIC_TOKEN is set)")
    return shop


def _platform_call(call, *args):
    try:
        return call(*args)
    except TargetError as exc:
        raise click.ClickException(str(exc)) from None


@trustoo_group.group("webhooks", cls=AppGroup)
def trustoo_webhooks() -> None:
    """The shop's webhook registrations (one URL per topic)."""


@trustoo_webhooks.command("list")
@click.option("--shop", default=None, help="Public token of the shop (default: TRUSTOO_PUBLIC_TOKEN).")
def trustoo_webhooks_list(shop: str | None) -> None:
    rt = runtime()
    for hook in _platform_call(lambda: rt.trustoo_api.get_shop_webhooks(_shop(rt, shop))):
        click.echo(f"{hook.get('id')!s:10} {hook.get('topic', ''):16} {hook.get('url', '')}")


@trustoo_webhooks.command("register")
@click.option("--base-url", required=True, help="Where this service is reachable, e.g. https://reviews.example.com")
@click.option("--shop", default=None, help="Public token of the shop (default: TRUSTOO_PUBLIC_TOKEN).")
def trustoo_webhooks_register(base_url: str, shop: str | None) -> None:
    """Register the three review topics; registrations that exist already are left as they are."""
    rt = runtime()
    shop = _shop(rt, shop)
    existing = {(h.get("topic"), h.get("url")) for h in _platform_call(lambda: rt.trustoo_api.get_shop_webhooks(shop))}
    for topic, slug in trustoo.TOPIC_ROUTES.items():
        url = f"{base_url.rstrip('/')}/webhooks/trustoo/{slug}"
        if (topic, url) in existing:
            click.echo(f"found      {topic:16} {url}")
            continue
        _platform_call(rt.trustoo_api.create_shop_webhook, shop, topic, url)
        click.echo(f"registered {topic:16} {url}")


@trustoo_webhooks.command("delete")
@click.option("--base-url", default=None, help="Delete every registration pointing at this service.")
@click.option("--shop", default=None, help="Public token of the shop (default: TRUSTOO_PUBLIC_TOKEN).")
@click.argument("webhook_ids", nargs=-1)
def trustoo_webhooks_delete(base_url: str | None, shop: str | None, webhook_ids: tuple[str, ...]) -> None:
    """Delete registrations by id, or all of those pointing at --base-url."""
    rt = runtime()
    shop = _shop(rt, shop)
    ids = list(webhook_ids)
    if base_url:
        prefix = f"{base_url.rstrip('/')}/webhooks/trustoo"
        ids += [
            str(h["id"])
            for h in _platform_call(lambda: rt.trustoo_api.get_shop_webhooks(shop))
            if str(h.get("url", "")).startswith(prefix)
        ]
    if not ids:
        raise click.ClickException("name webhook ids or --base-url")
    for webhook_id in ids:
        _platform_call(rt.trustoo_api.delete_shop_webhook, shop, webhook_id)
        click.echo(f"deleted {webhook_id}")


@trustoo_group.command("authorize-url")
@click.option("--shop", required=True, help="Public token of the shop that is to approve ReviewBridge.")
@click.option(
    "--base-url",
    required=True,
    help="Where this service is reachable; the callback is <base-url>/oauth/trustoo/callback",
)
def trustoo_authorize_url(shop: str, base_url: str) -> None:
    """OAuth platform mode: the link a merchant opens to approve ReviewBridge."""
    rt = runtime()
    redirect_uri = f"{base_url.rstrip('/')}/oauth/trustoo/callback"
    click.echo(
        _platform_call(
            lambda: trustoo.authorization_url(rt.settings, rt.trustoo_api, shop=shop, redirect_uri=redirect_uri)
        )
    )


@click.group("wix", cls=AppGroup)
def wix_group() -> None:
    """Wix: the review requests ReviewBridge made for fulfilled orders."""


@wix_group.group("review-requests", cls=AppGroup)
def wix_review_requests() -> None:
    """One review request per fulfilled order."""


@wix_review_requests.command("list")
@click.option("--order", "order_id", default=None, help="Only this order's.")
@click.option("--json", "as_json", is_flag=True)
def wix_review_requests_list(order_id: str | None, as_json: bool) -> None:
    """What was asked, for which order, and how it stands (requested, adopted, skipped, failed)."""
    rows = review_requests.list_requests(runtime().engine, order_id=order_id)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        click.echo(
            f"{row['account'][:36]:36} {row['order_id'][:36]:36} {row['status']:10} "
            f"{row['request_id'] or '':36} {row['reason'] or ''}"
        )
