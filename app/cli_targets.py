"""`reviewbridge setup commercetools` and `reviewbridge products …`: preparing the targets."""

from __future__ import annotations

import csv
import io

import click
from flask.cli import AppGroup

from app import products
from app.runtime import runtime
from connectors.base import TargetError

__all__ = ["products_group", "setup_group"]


@click.group("setup", cls=AppGroup)
def setup_group() -> None:
    """Prepare a platform for ReviewBridge."""


@setup_group.command("commercetools")
def setup_commercetools() -> None:
    """Create the Custom Type and review States ReviewBridge needs; safe to run again."""
    target = next((t for t in runtime().targets if t.name == "commercetools"), None)
    if target is None:
        raise click.ClickException(
            "commercetools is not configured: set CTP_PROJECT_KEY, CTP_CLIENT_ID and CTP_CLIENT_SECRET"
        )
    try:
        report = target.setup()
    except TargetError as exc:
        raise click.ClickException(str(exc)) from None
    for kind, key, outcome in report:
        click.echo(f"{outcome:8} {kind[:-1]} {key}")


@click.group("products", cls=AppGroup)
def products_group() -> None:
    """Which commercetools product each source product's reviews belong to."""


@products_group.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
def products_import(csv_file) -> None:
    """Add or change mappings from CSV_FILE (source,account,source_product_id,product_key,product_id[,target])."""
    rt = runtime()
    try:
        result = products.import_csv(rt.engine, csv_file, now=rt.clock())
    except products.MappingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{result.mappings} mapping(s) imported, {result.released} waiting event(s) released")


@products_group.command("list")
def products_list() -> None:
    """Print the mappings as CSV."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=products.CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(products.list_mappings(runtime().engine))
    click.echo(out.getvalue(), nl=False)
