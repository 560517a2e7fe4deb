"""`reviewbridge trustoo webhooks|authorize-url`: webhook registration and the OAuth platform mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from flask.cli import AppGroup

from app.cli._table import echo_rows

if TYPE_CHECKING:
    from app.core.services import Services


__all__ = ["trustoo_group"]


@click.group("trustoo", cls=AppGroup)
def trustoo_group() -> None:
    """Trustoo: webhook registration and OAuth platform mode."""


def _shop(services: Services, shop: str | None) -> str:
    shop = shop or services.settings.trustoo_public_token
    if not shop:
        raise click.ClickException("name the shop with --shop PUBLIC_TOKEN (no TRUSTOO_PUBLIC_TOKEN is set)")
    return shop


def _platform_call(call, *args):
    from connectors.base import TargetError

    try:
        return call(*args)
    except TargetError as exc:
        raise click.ClickException(str(exc)) from None


@trustoo_group.group("webhooks", cls=AppGroup)
def trustoo_webhooks() -> None:
    """The shop's webhook registrations (one URL per topic)."""


@trustoo_webhooks.command("list")
@click.option("--shop", default=None, help="Public token of the shop (default: TRUSTOO_PUBLIC_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the registrations as JSON.")
def trustoo_webhooks_list(shop: str | None, as_json: bool) -> None:
    """The shop's webhook registrations: id, topic and URL."""
    from app.bootstrap import current_services

    services = current_services()
    hooks = _platform_call(services.trustoo_api.get_shop_webhooks, _shop(services, shop))
    if not hooks and not as_json:
        click.echo("none")
        return
    echo_rows(hooks, [("id", "id"), ("topic", "topic"), ("url", "url")], as_json=as_json)


@trustoo_webhooks.command("register")
@click.option(
    "--base-url",
    default=None,
    help="Where this service is reachable, e.g. https://reviews.example.com (default: PUBLIC_URL).",
)
@click.option("--shop", default=None, help="Public token of the shop (default: TRUSTOO_PUBLIC_TOKEN).")
def trustoo_webhooks_register(base_url: str | None, shop: str | None) -> None:
    """Point the three review topics at this service: registrations already there are kept, ours at an
    old address are moved, missing ones are registered; other apps' registrations are left alone."""
    from app.bootstrap import current_services
    from app.core import trustoo_webhooks

    services = current_services()
    shop = _shop(services, shop)
    base_url = base_url or services.settings.public_url
    if not base_url:
        raise click.ClickException("name the address with --base-url URL, or set PUBLIC_URL")
    api = services.trustoo_api
    for step in trustoo_webhooks.plan(_platform_call(api.get_shop_webhooks, shop), base_url):
        if step.action == "moved":
            _platform_call(api.update_shop_webhook, shop, step.webhook_id, step.topic, step.url)
        elif step.action == "registered":
            _platform_call(api.create_shop_webhook, shop, step.topic, step.url)
        elif step.action == "deleted":
            _platform_call(api.delete_shop_webhook, shop, step.webhook_id)
        click.echo(f"{step.action:10} {step.topic:16} {step.url}" + (f" (was {step.was})" if step.was else ""))


@trustoo_webhooks.command("delete")
@click.option("--base-url", default=None, help="Delete every registration pointing at this service.")
@click.option("--shop", default=None, help="Public token of the shop (default: TRUSTOO_PUBLIC_TOKEN).")
@click.argument("webhook_ids", nargs=-1)
def trustoo_webhooks_delete(base_url: str | None, shop: str | None, webhook_ids: tuple[str, ...]) -> None:
    """Delete registrations by id, or all of those pointing at --base-url."""
    from app.bootstrap import current_services

    services = current_services()
    shop = _shop(services, shop)
    ids = list(webhook_ids)
    if base_url:
        prefix = f"{base_url.rstrip('/')}/webhooks/trustoo"
        ids += [
            str(h["id"])
            for h in _platform_call(lambda: services.trustoo_api.get_shop_webhooks(shop))
            if str(h.get("url", "")).startswith(prefix)
        ]
    if not ids:
        raise click.ClickException("name webhook ids or --base-url")
    for webhook_id in ids:
        _platform_call(services.trustoo_api.delete_shop_webhook, shop, webhook_id)
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
    from app.bootstrap import current_services
    from app.core import trustoo

    services = current_services()
    redirect_uri = f"{base_url.rstrip('/')}/oauth/trustoo/callback"
    click.echo(
        _platform_call(
            lambda: trustoo.authorization_url(
                services.settings, services.trustoo_api, shop=shop, redirect_uri=redirect_uri
            )
        )
    )
