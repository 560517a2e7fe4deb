"""Product matching: which commercetools product a source product's reviews belong to.

A mapping row (source, account, source product → commercetools product key or id) wins; without
one, the target applies CTP_PRODUCT_KEY_TEMPLATE. Importing mappings releases the events that
were waiting for them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from sqlalchemy import Engine, select

from app.core import queue
from app.core.db import insert_for, transaction
from app.core.models import ProductMapping, table

__all__ = ["CSV_COLUMNS", "ImportResult", "MappingError", "import_csv", "list_mappings", "lookup", "map_one"]

_map = table(ProductMapping)
CSV_COLUMNS = ("source", "account", "source_product_id", "product_key", "product_id", "target")
DEFAULT_TARGET = "commercetools"


class MappingError(ValueError):
    """A CSV row we cannot use; the message names the line."""


@dataclass(frozen=True)
class ImportResult:
    mappings: int
    released: int


def lookup(engine: Engine, target: str, source: str, account: str, source_product_id: str) -> tuple[str, str] | None:
    """("id", value) or ("key", value) for a mapped product at `target`, else None."""
    with transaction(engine) as session:
        row = session.execute(
            select(_map.c.product_id, _map.c.product_key).where(
                _map.c.target == target,
                _map.c.source == source,
                _map.c.account == account,
                _map.c.source_product_id == source_product_id,
            )
        ).first()
    if row is None:
        return None
    product_id, product_key = row
    return ("id", product_id) if product_id else ("key", product_key)


def import_csv(engine: Engine, stream: IO[str], *, now: datetime) -> ImportResult:
    """Upsert every row, then release the waiting events of the mapped products."""
    rows = list(_read(stream))
    _upsert(engine, rows, now=now)
    released = 0
    for (source, account), products in _group(rows).items():
        released += queue.release_waiting(engine, now=now, source=source, account=account, product_ids=products)
    return ImportResult(mappings=len(rows), released=released)


def map_one(
    engine: Engine,
    *,
    source: str,
    account: str,
    source_product_id: str,
    product_key: str | None = None,
    product_id: str | None = None,
    target: str = DEFAULT_TARGET,
    now: datetime,
) -> int:
    """Map one source product (as one CSV row would) and release its waiting events; how many were released."""
    row = {
        "source": source,
        "account": account,
        "source_product_id": source_product_id,
        "product_key": product_key,
        "product_id": product_id,
        "target": target,
    }
    row = {name: (value or "").strip() or None for name, value in row.items()}
    if not (row["source"] and row["account"] and row["source_product_id"]):
        raise MappingError("source, account and source_product_id are required")
    if bool(row["product_key"]) == bool(row["product_id"]):
        raise MappingError("give exactly one of product_key and product_id")
    _upsert(engine, [row], now=now)
    return queue.release_waiting(
        engine, now=now, source=row["source"], account=row["account"], product_ids=[row["source_product_id"]]
    )


def list_mappings(engine: Engine) -> list[dict]:
    with transaction(engine) as session:
        rows = (
            session.execute(
                select(*(_map.c[name] for name in CSV_COLUMNS)).order_by(
                    _map.c.source, _map.c.account, _map.c.source_product_id
                )
            )
            .mappings()
            .all()
        )
    return [dict(row) for row in rows]


def _upsert(engine: Engine, rows: list[dict], *, now: datetime) -> None:
    if not rows:
        return
    statement = insert_for(engine, _map).values([row | {"updated_at": now} for row in rows])
    statement = statement.on_conflict_do_update(
        index_elements=["target", "source", "account", "source_product_id"],
        set_={
            "product_key": statement.excluded.product_key,
            "product_id": statement.excluded.product_id,
            "updated_at": statement.excluded.updated_at,
        },
    )
    with transaction(engine) as session:
        session.execute(statement)


def _read(stream: IO[str]) -> Iterable[dict]:
    reader = csv.DictReader(stream)
    missing = {"source", "account", "source_product_id"} - set(reader.fieldnames or ())
    if missing:
        raise MappingError(f"the CSV header lacks {', '.join(sorted(missing))} (columns: {', '.join(CSV_COLUMNS)})")
    for line, raw in enumerate(reader, start=2):
        row = {name: (raw.get(name) or "").strip() or None for name in CSV_COLUMNS}
        row["target"] = row["target"] or DEFAULT_TARGET
        if not (row["source"] and row["account"] and row["source_product_id"]):
            raise MappingError(f"line {line}: source, account and source_product_id are required")
        if bool(row["product_key"]) == bool(row["product_id"]):
            raise MappingError(f"line {line}: give exactly one of product_key and product_id")
        yield row


def _group(rows: Iterable[dict]) -> dict[tuple[str, str], set[str]]:
    groups: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        groups.setdefault((row["source"], row["account"]), set()).add(row["source_product_id"])
    return groups
