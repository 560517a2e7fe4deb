"""Events as a file: every event a filter matches, as CSV or JSON, written piece by piece.

The rows come from events.iter_matching, a batch per short read, and each format is a generator of
text chunks, so a file of the whole inbox is never in memory and no transaction stays open while it
travels. A file holds no more than the page shows: configured secrets are replaced
(app/core/redaction.py), and the payload gives only the review's author and product. A CSV cell
that a spreadsheet would take for a formula is defused with a leading apostrophe, as OWASP advises
against CSV injection.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from app.core.events import LIST_COLUMNS, EventFilter, iter_matching
from app.core.redaction import redact

__all__ = ["COLUMNS", "as_csv", "as_json", "rows"]

_AFTER_ACCOUNT = LIST_COLUMNS.index("account") + 1
#: The events list's columns with the account's label beside its id, then the review's author and
#: product as the payload names them.
COLUMNS = (*LIST_COLUMNS[:_AFTER_ACCOUNT], "account_label", *LIST_COLUMNS[_AFTER_ACCOUNT:], "author", "product")
#: Where each source's review payload names them (as connectors/trustoo.py and
#: connectors/wix_mapping.py map_review read them); other payloads (orders, installs) name neither.
_AUTHOR = {"trustoo": ("author",), "wix": ("author", "authorName")}
_PRODUCT = {"trustoo": ("product_id",), "wix": ("entityId",)}
#: What a spreadsheet may run when a cell starts with it (OWASP: CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 64 * 1024  # characters a CSV chunk gathers before it is sent


def rows(
    engine: Engine, where: EventFilter, *, labels: Mapping[tuple[str, str], str], secrets: list[str]
) -> Iterator[dict[str, Any]]:
    """The matching events newest first, each as COLUMNS, with every secret in `secrets` replaced."""
    for event in iter_matching(engine, where):
        payload = _json_object(event.pop("payload"))
        event["account_label"] = labels.get((event["source"], event["account"]))
        event["author"] = _text_at(payload, _AUTHOR.get(event["source"], ()))
        event["product"] = _text_at(payload, _PRODUCT.get(event["source"], ()))
        yield redact({name: event[name] for name in COLUMNS}, secrets)


def as_csv(events: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """A header row, then one row per event (empty cells for nothing), in chunks of about 64 KB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for event in events:
        writer.writerow([_cell(event[name]) for name in COLUMNS])
        if buffer.tell() >= _CHUNK:
            yield _drain(buffer)
    yield _drain(buffer)


def as_json(events: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """One JSON array of objects (one line each), written as the events come."""
    yield "["
    separator = "\n"
    for event in events:
        yield separator + json.dumps(dict(event), ensure_ascii=False)
        separator = ",\n"
    yield "\n]\n"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _json_object(payload: str) -> Mapping[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:  # a quarantined delivery keeps its body as it came
        return {}
    return value if isinstance(value, dict) else {}


def _text_at(payload: Mapping[str, Any], path: Sequence[str]) -> str | None:
    value: Any = payload
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
