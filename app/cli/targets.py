"""`reviewbridge setup commercetools` and `reviewbridge products …`: preparing the targets."""

from __future__ import annotations

import csv
import io
import json

import click
from flask.cli import AppGroup

__all__ = ["products_group", "setup_group"]


@click.group("setup", cls=AppGroup)
def setup_group() -> None:
    """Prepare a platform for ReviewBridge."""


@setup_group.command("commercetools")
@click.option(
    "--if-configured",
    is_flag=True,
    help="Without CTP_* settings, say so and succeed (the Procfile's release phase runs it on every deploy).",
)
def setup_commercetools(if_configured: bool) -> None:
    """Create the Custom Type and review States ReviewBridge needs; safe to run again."""
    from app.bootstrap import current_services
    from connectors.base import TargetError

    target = next((t for t in current_services().targets if t.name == "commercetools"), None)
    if target is None:
        advice = "commercetools is not configured: set CTP_PROJECT_KEY, CTP_CLIENT_ID and CTP_CLIENT_SECRET"
        if if_configured:
            click.echo(f"{advice}; nothing to set up")
            return
        raise click.ClickException(advice)
    try:
        report = target.setup()
    except TargetError as exc:
        raise click.ClickException(str(exc)) from None
    for kind, key, outcome in report:
        said = "missing → created" if outcome == "created" else outcome.replace("found", "present", 1)
        click.echo(f"{kind[:-1]} {key}: {said}")


@click.group("products", cls=AppGroup)
def products_group() -> None:
    """Which commercetools product each source product's reviews belong to."""


@products_group.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
def products_import(csv_file) -> None:
    """Add or change mappings from CSV_FILE (source,account,source_product_id,product_key,product_id[,target])."""
    from app.bootstrap import current_services
    from app.core import products

    services = current_services()
    try:
        result = products.import_csv(services.engine, csv_file, now=services.clock())
    except products.MappingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{result.mappings} mapping(s) imported, {result.released} waiting event(s) released")


@products_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the mappings as JSON instead of CSV.")
def products_list(as_json: bool) -> None:
    """Print the mappings as CSV (its header row names the columns), the format `import` reads."""
    from app.bootstrap import current_services
    from app.core import products

    mappings = products.list_mappings(current_services().engine)
    if as_json:
        click.echo(json.dumps(mappings, indent=2, default=str))
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=products.CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(mappings)
    click.echo(out.getvalue(), nl=False)
