"""What the admin API reads, declared as pydantic models: its query strings and JSON bodies.

They are read field by field, in the order of the fields, by params.py's own readers (as pydantic
BeforeValidators): the first wrong field aborts with the same 400 `{"error": "bad_request", "message":
"<field>: …"}` the admin page gives for it, and the type and bounds after it are what the document
shows. A replay or a discard takes one of several shapes: a check on the whole
body says which (or that it is none, or two), and only that shape's fields are read, so a field of
another shape is ignored as it always was. What needs the database (which ids exist, which accounts a
source has) stays in the views.

What it answers is declared in admin_api_answers.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from flask import abort
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, RootModel, Tag, model_validator

from app.core.events import SEARCH_MAX, EventFilter
from app.core.models import EventStatus
from app.web import params

__all__ = [
    "MAX_ID",
    "CountQuery",
    "DeadLettersQuery",
    "DiscardByFilter",
    "DiscardByIds",
    "DiscardRequest",
    "EventFilterBody",
    "EventsQuery",
    "ReplayByFilter",
    "ReplayByIds",
    "ReplayDead",
    "ReplayRequest",
    "ResyncRequest",
    "ResyncsQuery",
    "reference",
]

MAX_ID = 2**63 - 1  # BIGINT: no row has a larger id, and both databases refuse one in a query
MAX_LIMIT = 500
MAX_IDS = 1000


def _read(reader: Callable[..., Any], name: str, *args: Any) -> BeforeValidator:
    """The field read as params.py reads `name` from a mapping: its value, or a 400 naming it."""
    return BeforeValidator(lambda value: reader({name: value}, name, *args))


def reference(item: Any) -> str | None:
    """What events.resolve_ids reads: digits are a row id (so they must fit one), other text a platform event id."""
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item) if 0 < item <= MAX_ID else None
    if not isinstance(item, str) or not item.strip() or "\x00" in item:
        return None
    text = item.strip()
    if text.isdigit() and not (text.isascii() and int(text) <= MAX_ID):
        return None
    return text


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MAX_IDS:
        abort(400, description=f"ids: expected a list of 1 to {MAX_IDS} event ids")
    references = [reference(item) for item in value]
    if None in references:
        abort(400, description="ids: each must be a row id (a positive number) or a platform event id (text)")
    return [ref for ref in references if ref is not None]


def _up_to_id(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID):
        abort(400, description=f"up_to_id: expected a whole number from 0 to {MAX_ID} (as /events/count gave it)")
    return value


#: Constraints come before the reader in each Annotated: the reader runs first, and they (after it) are
#: what the document shows.
_Searched = Annotated[str, Field(max_length=SEARCH_MAX)] | None
_Since = Annotated[
    datetime | None, _read(params.when, "since"), Field(description="Received at or after (ISO 8601; naive is UTC).")
]
_Until = Annotated[datetime | None, _read(params.when, "until"), Field(description="Received before (ISO 8601).")]
_Source = Annotated[str | None, _read(params.text, "source"), Field(description="A source platform.")]
_Account = Annotated[
    str | None,
    _read(params.text, "account"),
    Field(description="A source account: a Trustoo shop's public token, a Wix site's instance id."),
]
_Q = Annotated[
    _Searched,
    _read(params.search, "q"),
    Field(
        description="Text, in any case, in the event id, the review or order id, the topic, the error or the payload."
    ),
]
_Limit = Annotated[
    int, Field(ge=1, le=MAX_LIMIT), _read(params.whole, "limit", 50, 1, MAX_LIMIT), Field(description="Page size.")
]
_Before = Annotated[
    Annotated[int, Field(ge=1, le=MAX_ID)] | None,
    _read(params.whole, "before", None, 1, MAX_ID),
    Field(description="The `next_before` of the previous page: only events with a smaller row id."),
]
#: A row id (as lists show it) or a platform event id.
EventReference = Annotated[int, Field(ge=1, le=MAX_ID)] | Annotated[str, Field(min_length=1)]
_Ids = Annotated[
    list[EventReference],
    Field(min_length=1, max_length=MAX_IDS),
    BeforeValidator(_ids),
    Field(description="Row ids (numbers) or platform event ids (text)."),
]
_UpToId = Annotated[
    Annotated[int, Field(ge=0, le=MAX_ID)] | None,
    BeforeValidator(_up_to_id),
    Field(
        description="The `up_to_id` of `GET /events/count`: later events are left alone. Without it, all matching now."
    ),
]
_Reason = Annotated[str, Field(min_length=1, description="Why these events need nothing more; kept in `last_error`.")]


# --- inputs -----------------------------------------------------------------------------------------


class _Filter(BaseModel):
    """The events filter's fields (params.FILTER_FIELDS), read in that order."""

    status: Annotated[EventStatus | None, BeforeValidator(params.status)] = None
    source: _Source = None
    account: _Account = None
    since: _Since = None
    until: _Until = None
    q: _Q = None

    def where(self) -> EventFilter:
        status = self.status.value if self.status else None
        return EventFilter(
            status=status, source=self.source, account=self.account, since=self.since, until=self.until, text=self.q
        )


class CountQuery(_Filter):
    pass


class EventsQuery(_Filter):
    limit: _Limit = 50
    before: _Before = None


class DeadLettersQuery(BaseModel):
    source: _Source = None
    limit: _Limit = 50
    before: _Before = None


class ResyncsQuery(BaseModel):
    source: _Source = None
    account: _Account = None


class EventFilterBody(_Filter):
    """The events a bulk replay or discard takes: one field at least, and no other (a misspelt one would
    widen it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, given: Any) -> Any:
        if not isinstance(given, dict) or not given.keys() <= set(params.FILTER_FIELDS):
            abort(400, description=f"filter: expected an object with some of {', '.join(params.FILTER_FIELDS)}")
        return given

    @model_validator(mode="after")
    def _not_empty(self) -> EventFilterBody:
        if self.where().empty:
            abort(400, description=f"filter: name at least one of {', '.join(params.FILTER_FIELDS)}")
        return self


class ReplayByIds(BaseModel):
    """By row id or platform event id."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ids": [7, "review/created:880000001:2eda5c83ca3b555fea1ea2c1782856bb"]}]}
    )

    ids: _Ids
    dead: Literal[False] = False


class ReplayDead(BaseModel):
    """The dead letters, of a source, since a time, or whose last error holds some text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"dead": True, "source": "trustoo", "since": "2026-11-19T00:00:00Z", "error": "503"}]
        }
    )

    dead: Literal[True]
    source: _Source = None
    since: Annotated[datetime | None, _read(params.when, "since"), Field(description="ISO 8601; naive is UTC.")] = None
    error: Annotated[_Searched, _read(params.search, "error"), Field(description="Text the last error holds.")] = None


class ReplayByFilter(BaseModel):
    """Every event a filter matches, up to the `up_to_id` of a count."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"filter": {"status": "dead", "source": "trustoo"}, "up_to_id": 1181}]}
    )

    filter: EventFilterBody
    up_to_id: _UpToId = None
    dead: Literal[False] = False


def _replay_shape(body: Any) -> str:
    return "dead" if body.get("dead") is True else "ids" if "ids" in body else "filter"


class ReplayRequest(
    RootModel[
        Annotated[
            Annotated[ReplayByIds, Tag("ids")]
            | Annotated[ReplayDead, Tag("dead")]
            | Annotated[ReplayByFilter, Tag("filter")],
            Discriminator(_replay_shape),
        ]
    ]
):
    """Name the events in `ids`, send `dead: true` (with optional filters) for the dead letters, or send
    a `filter` (with the `up_to_id` of a count); one of them."""

    @model_validator(mode="before")
    @classmethod
    def _one_shape(cls, body: Any) -> Any:
        dead = params.flag(body, "dead")
        if dead + ("ids" in body) + ("filter" in body) != 1:
            abort(400, description='ids, dead, filter: name the events in ids, send {"dead": true}, or a filter (one)')
        return body


class DiscardByIds(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ids": [7, 12], "reason": "test reviews from the staging shop"}]}
    )
    ids: _Ids
    reason: _Reason


class DiscardByFilter(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"filter": {"source": "trustoo", "q": "staging"}, "up_to_id": 1181, "reason": "a test shop"}]
        }
    )
    filter: EventFilterBody
    up_to_id: _UpToId = None
    reason: _Reason


class DiscardRequest(
    RootModel[
        Annotated[
            Annotated[DiscardByIds, Tag("ids")] | Annotated[DiscardByFilter, Tag("filter")],
            Discriminator(lambda body: "ids" if "ids" in body else "filter"),
        ]
    ]
):
    """Name the events in `ids`, or send a `filter` (with the `up_to_id` of a count); not both. A reason
    is required."""

    @model_validator(mode="before")
    @classmethod
    def _one_shape_and_a_reason(cls, body: Any) -> Any:
        if ("ids" in body) == ("filter" in body):
            abort(400, description="ids, filter: name the events in ids, or send a filter (not both)")
        reason = params.text(body, "reason")
        if reason is None or not reason.strip():
            abort(400, description="reason: say why these events need nothing more")
        return body


class ResyncRequest(BaseModel):
    source: Annotated[
        str | None, _read(params.text, "source"), Field(description="A source that can be read page by page.")
    ] = None
    account: Annotated[
        str | None, _read(params.text, "account"), Field(description="One account; every one of `source` if left out.")
    ] = None
    since: Annotated[datetime | None, _read(params.when, "since"), Field(description="ISO 8601; naive is UTC.")] = None
    until: Annotated[datetime | None, _read(params.when, "until"), Field(description="ISO 8601; naive is UTC.")] = None
    dry_run: Annotated[bool, _read(params.flag, "dry_run"), Field(description="Report what would change.")] = False
    restart: Annotated[bool, _read(params.flag, "restart"), Field(description="Ignore the checkpoint.")] = False

    model_config = ConfigDict(
        json_schema_extra={
            "required": ["source"],
            "examples": [
                {"source": "trustoo"},
                {
                    "source": "trustoo",
                    "account": "GfKu22TCaj4gULtrA3/OgA==",
                    "since": "2026-11-01T00:00:00Z",
                    "dry_run": True,
                },
            ],
        }
    )
