"""`reviewbridge wix review-requests list`: the review requests made for fulfilled orders."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.cli._table import echo_rows

__all__ = ["wix_group"]


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
    from app.bootstrap import current_services
    from app.core import review_requests

    rows = review_requests.list_requests(current_services().engine, order_id=order_id)
    columns = [("site", "account"), ("order", "order_id"), ("status", "status"), ("request", "request_id")]
    echo_rows(rows, [*columns, ("reason", "reason")], as_json=as_json)
