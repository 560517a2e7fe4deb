"""The Wix emulator's site state and rules: Reviews v1, Review Requests v2, eCommerce orders, Contacts
v4 (Get Contact), events.

Pure Python, no HTTP: `tests/fakes/wix.py` is the web layer around it (OAuth, tokens, rate limits,
faults, webhook signing and delivery). Every rule follows `docs/platforms/wix.md` and, where that
lists an unknown, its assumption; the handful of choices it leaves open are marked "assumption".

- Reviews: one review per (namespace, entityId, author.contactId); `revision` (an int64 as a string)
  required on update, 409 on a stale one; apps cannot update organic reviews; unpublished (not
  APPROVED) reviews are hidden unless `returnPrivateReviews` / `includePrivateReviews`.
- Query language: only the fields and operators the docs list per API, `$and`/`$or`/`$not`, sort on
  sortable fields, default `createdDate ASC`, cursor paging (limit ≤ 100, default 50) whose cursor
  carries the query: a request with a cursor must not repeat `filter` or `sort`.
- Review Requests: the application errors of §1.5 (EITHER_ORDER_OR_ITEMS_REQUIRED 400,
  ORDER_NOT_FOUND / ORDER_IS_EMPTY / INITIATOR_IDENTITY_NOT_SUPPORTED 428), the five most expensive
  Stores items of an order, and no idempotency at all: two creates for one order make two requests.
- Contacts v4 (§1.8): Get Contact with `fields`/`fieldsets` projection (`id` and `revision` always
  come); an unknown or deleted contact is 404 NOT_FOUND (assumption: the docs list no code for it).
- Domain events in the three-layer shape of §1.2, with a per-entity increasing `entityEventSequence`.

Errors are raised as `WixError`; `WixError.body()` is the Wix error shape
`{"message", "details": {"applicationError": {code, description, data}}}` or
`{"message", "details": {"validationError": {"fieldViolations": [...]}}}`, and `{"message": "", "details": {}}`
for system errors. Nothing here is thread-safe by itself: the emulator holds one lock around every call.
"""

from __future__ import annotations

import copy
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STORES_APP_ID = "215238eb-22a5-4c36-9e7b-e7c08025e04e"
BOOKINGS_APP_ID = "13d21c63-b5ec-5912-8397-c3a5ddb27a97"
RESTAURANTS_APP_ID = "9a5d83fd-8570-482e-81ab-cfa88942ee60"

MODERATION_STATUSES = ("UNKNOWN", "APPROVED", "IN_MODERATION", "REJECTED", "SUBMITTED")
REVIEW_REQUEST_STATUSES = ("UNKNOWN_REVIEW_REQUEST_STATUS", "SCHEDULED", "CANCELED", "FAILED", "SENT")
IDENTITY_TYPES = ("ANONYMOUS_VISITOR", "MEMBER", "WIX_USER", "APP")
REVIEW_FQDN = "wix.reviews.v1.review"
REVIEW_REQUEST_FQDN = "wix.reviews.v2.review_request"
ORDER_FQDN = "wix.ecom.v1.order"
#: slug → eventType (the dotted name appears only in the envelope, §1.2)
REVIEW_EVENT_TYPES = {
    "created": "wix.reviews.v1.review_created",
    "updated": "wix.reviews.v1.review_updated",
    "deleted": "wix.reviews.v1.review_deleted",
    "moderation_status_changed": "wix.reviews.v1.review_moderation_status_changed",
    "review_published": "wix.reviews.v1.review_review_published",  # sic, as Wix names it
}
REVIEW_REQUEST_EVENT_TYPES = {
    slug: f"wix.reviews.v2.review_request_{slug}" for slug in ("created", "updated", "deleted")
}
ORDER_EVENT_TYPES = {
    "created": "wix.ecom.v1.order_created",
    "approved": "wix.ecom.v1.order_approved",
    "updated": "wix.ecom.v1.order_updated",
    "fulfilled": "wix.ecom.v1.order_fulfilled",
    "payment_status_updated": "wix.ecom.v1.order_payment_status_updated",
    "canceled": "wix.ecom.v1.order_canceled",
}
QUERY_LIMIT_DEFAULT, QUERY_LIMIT_MAX = 50, 100
REVIEW_REQUEST_ITEMS_MAX = 5
_DEFAULT = object()


# --- errors ---------------------------------------------------------------------------------------


class WixError(Exception):
    """One Wix error answer: the HTTP status and the body of `docs/platforms/wix.md` §1.7."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        description: str | None = None,
        data: Mapping[str, Any] | None = None,
        violations: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.description = description if description is not None else message
        self.data = dict(data or {})
        self.violations = violations

    def body(self) -> dict[str, Any]:
        if self.violations is not None:
            return {"message": self.message, "details": {"validationError": {"fieldViolations": self.violations}}}
        if self.code is None:  # system error: empty, as Wix sends them
            return {"message": self.message, "details": {}}
        return {
            "message": self.message,
            "details": {"applicationError": {"code": self.code, "description": self.description, "data": self.data}},
        }


def app_error(status: int, code: str, description: str, **data: Any) -> WixError:
    return WixError(status, description, code=code, description=description, data=data)


def invalid(field_name: str, description: str, rule: str = "OTHER", **data: Any) -> WixError:
    """400 INVALID_ARGUMENT with one field violation.

    violatedRule: REQUIRED_FIELD, MAX, MIN, MAX_LENGTH, FORMAT or OTHER."""
    violation = {"field": field_name, "description": description, "violatedRule": rule, "data": data}
    return WixError(400, f"INVALID_ARGUMENT: {field_name}: {description}", violations=[violation])


def not_found(what: str, ident: str) -> WixError:
    return app_error(404, "NOT_FOUND", f"{what} with id {ident} not found")


def system_error(status: int) -> WixError:
    return WixError(status, "")


# --- time -----------------------------------------------------------------------------------------


def iso(ts: float) -> str:
    """Wix's timestamp form: UTC, milliseconds, `Z`."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_date(value: Any, field_name: str = "date") -> datetime:
    if isinstance(value, Mapping) and "$date" in value:
        value = value["$date"]
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise invalid(field_name, f"{value!r} is not an ISO-8601 date", "FORMAT")


def _as_iso(value: Any, clock: Callable[[], float]) -> str:
    if value is None:
        return iso(clock())
    moment = parse_date(value)
    return iso(moment.timestamp())


# --- the query language ---------------------------------------------------------------------------

_EQ_IN = frozenset({"$eq", "$ne", "$in"})
_EQ_IN_NIN = frozenset({"$eq", "$ne", "$in", "$nin"})
_CMP = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"})
_CMP_NIN = _CMP | {"$nin"}


@dataclass(frozen=True)
class FieldSpec:
    ops: frozenset[str]
    sortable: bool = False
    kind: str = "str"  # str | date | num | bool | array | media


#: Query Reviews: fields and operators as docs/platforms/wix.md §1.4 lists them
REVIEW_FIELDS = {
    "id": FieldSpec(_EQ_IN),
    "author.contactId": FieldSpec(_EQ_IN),
    "entityId": FieldSpec(_EQ_IN),
    "moderation.moderationStatus": FieldSpec(_EQ_IN),
    "namespace": FieldSpec(_EQ_IN),
    "createdDate": FieldSpec(_CMP, True, "date"),
    "content.rating": FieldSpec(_CMP, True, "num"),
    "helpfulness": FieldSpec(_CMP, True, "num"),
    "relevanceScore": FieldSpec(_CMP, True, "num"),
    "origin.type": FieldSpec(frozenset({"$eq", "$ne"}), True),
    "verified": FieldSpec(frozenset({"$eq", "$ne"}), True, "bool"),
    "content.media": FieldSpec(frozenset({"$isEmpty"}), False, "media"),
}
#: Query Review Requests: the docs' table (REST names)
REVIEW_REQUEST_FIELDS = {
    "id": FieldSpec(_EQ_IN_NIN),
    "namespace": FieldSpec(_EQ_IN_NIN),
    "communicationChannel": FieldSpec(_EQ_IN_NIN),
    "recipient.contactId": FieldSpec(_EQ_IN_NIN),
    "requestedBy.identityType": FieldSpec(_EQ_IN_NIN),
    "requestedBy.wixUserId": FieldSpec(_EQ_IN_NIN),
    "requestedBy.appId": FieldSpec(_EQ_IN_NIN),
    "items.catalogItemId": FieldSpec(_EQ_IN_NIN | {"$hasSome", "$hasAll"}, False, "array"),
    "items.reviewId": FieldSpec(_EQ_IN_NIN | {"$exists", "$hasSome", "$hasAll"}, False, "array"),
    "order.id": FieldSpec(_EQ_IN_NIN | {"$exists"}),
    "automationActivationId": FieldSpec(_EQ_IN_NIN | {"$exists"}),
    "createdDate": FieldSpec(_CMP_NIN, True, "date"),
    "sendDate": FieldSpec(_CMP_NIN, True, "date"),
    "status": FieldSpec(_EQ_IN_NIN, True),
}


def _path_value(entity: Mapping[str, Any], path: str) -> Any:
    """A dotted path; through an array it collects the values of every element."""
    current: Any = entity
    for part in path.split("."):
        if isinstance(current, list):
            current = [item.get(part) for item in current if isinstance(item, Mapping)]
        elif isinstance(current, Mapping):
            current = current.get(part)
        else:
            return None
    return current


def _coerce(spec: FieldSpec, value: Any, field_name: str) -> Any:
    if value is None:
        return None
    if spec.kind == "date":
        return parse_date(value, field_name)
    if spec.kind == "num":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid(field_name, f"{value!r} is not a number", "FORMAT")
        return value
    if spec.kind == "bool" and not isinstance(value, bool):
        raise invalid(field_name, f"{value!r} is not a boolean", "FORMAT")
    return value


def compile_filter(
    filt: Any, fields: Mapping[str, FieldSpec], where: str = "query.filter"
) -> Callable[[Mapping[str, Any]], bool]:
    """Validate a filter against the API's field table and return a predicate over entities."""
    if filt is None:
        return lambda entity: True
    if not isinstance(filt, Mapping):
        raise invalid(where, "filter must be an object", "FORMAT")
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for key, cond in filt.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise invalid(where, f"{key} takes a non-empty array of filters", "FORMAT")
            parts = [compile_filter(part, fields, where) for part in cond]
            tests.append(
                (lambda ps: lambda e: all(p(e) for p in ps))(parts)
                if key == "$and"
                else (lambda ps: lambda e: any(p(e) for p in ps))(parts)
            )
        elif key == "$not":
            inner = compile_filter(cond, fields, where)
            tests.append(lambda e, inner=inner: not inner(e))
        elif key.startswith("$"):
            raise invalid(where, f"unsupported operator {key}", "OTHER")
        else:
            tests.append(_compile_field(key, cond, fields, where))
    return lambda entity: all(test(entity) for test in tests)


def _compile_field(name: str, cond: Any, fields: Mapping[str, FieldSpec], where: str):
    spec = fields.get(name)
    if spec is None:
        raise invalid(f"{where}.{name}", f"filtering by {name} is not supported", "OTHER")
    if isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond) and "$date" not in cond:
        ops = dict(cond)
    else:
        ops = {"$eq": cond}
    checks = []
    for op, operand in ops.items():
        if op not in spec.ops:
            raise invalid(f"{where}.{name}", f"operator {op} is not supported on {name}", "OTHER")
        if op in ("$in", "$nin", "$hasSome", "$hasAll"):
            if not isinstance(operand, list):
                raise invalid(f"{where}.{name}", f"{op} takes an array", "FORMAT")
            operand = [_coerce(spec, item, f"{where}.{name}") for item in operand]
        elif op in ("$exists", "$isEmpty"):
            if not isinstance(operand, bool):
                raise invalid(f"{where}.{name}", f"{op} takes a boolean", "FORMAT")
        else:
            operand = _coerce(spec, operand, f"{where}.{name}")
        checks.append((op, operand))

    def test(entity: Mapping[str, Any]) -> bool:
        raw = _path_value(entity, name)
        if spec.kind == "media":
            return all((not raw) == operand for _, operand in checks)
        if spec.kind == "array":
            values = [v for v in (raw or []) if v is not None]
            return all(_array_op(op, values, operand) for op, operand in checks)
        value = _coerce(spec, raw, name) if raw is not None else None
        return all(_scalar_op(op, value, operand) for op, operand in checks)

    return test


def _scalar_op(op: str, value: Any, operand: Any) -> bool:
    if op == "$eq":
        return value == operand
    if op == "$ne":
        return value != operand
    if op == "$in":
        return value in operand
    if op == "$nin":
        return value not in operand
    if op == "$exists":
        return (value is not None) == operand
    if value is None or operand is None:
        return False
    try:
        return {"$gt": value > operand, "$gte": value >= operand, "$lt": value < operand, "$lte": value <= operand}[op]
    except TypeError:
        return False


def _array_op(op: str, values: list[Any], operand: Any) -> bool:
    if op == "$eq":
        return operand in values
    if op == "$ne":
        return operand not in values
    if op in ("$in", "$hasSome"):
        return any(v in operand for v in values)
    if op == "$nin":
        return not any(v in operand for v in values)
    if op == "$hasAll":
        return all(item in values for item in operand)
    if op == "$exists":
        return bool(values) == operand
    return False


@functools.total_ordering
class _Desc:
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value


def compile_sort(sort: Any, fields: Mapping[str, FieldSpec]) -> list[tuple[str, str]]:
    if sort is None or sort == []:
        return [("createdDate", "ASC")]
    if not isinstance(sort, list):
        raise invalid("query.sort", "sort must be an array of {fieldName, order}", "FORMAT")
    result = []
    for index, item in enumerate(sort):
        if not isinstance(item, Mapping) or not isinstance(item.get("fieldName"), str):
            raise invalid(f"query.sort[{index}].fieldName", "fieldName is required", "REQUIRED_FIELD")
        name, order = item["fieldName"], item.get("order", "ASC") or "ASC"
        spec = fields.get(name)
        if spec is None or not spec.sortable:
            raise invalid(f"query.sort[{index}].fieldName", f"sorting by {name} is not supported", "OTHER")
        if order not in ("ASC", "DESC"):
            raise invalid(f"query.sort[{index}].order", f"{order!r} is not ASC or DESC", "FORMAT")
        result.append((name, order))
    return result


def sort_key(
    entity: Mapping[str, Any], seq: int, sort: list[tuple[str, str]], fields: Mapping[str, FieldSpec]
) -> tuple:
    parts: list[Any] = []
    for name, order in sort:
        raw = _path_value(entity, name)
        value = _coerce(fields[name], raw, name) if raw is not None else None
        if isinstance(value, datetime):
            value = value.timestamp()
        cell = (0, 0) if value is None else (1, value)
        parts.append(_Desc(cell) if order == "DESC" else cell)
    parts.append(seq)  # ties keep creation order
    return tuple(parts)


# --- the state ------------------------------------------------------------------------------------


@dataclass
class WixEvent:
    """A domain event the emulator produced (not delivered by itself; sign it and deliver it)."""

    event_type: str
    instance_id: str
    event: dict[str, Any]


@dataclass
class Instance:
    """One app instance (one site): its reviews, review requests, orders and contacts."""

    id: str
    moderation: bool = False  # site moderation on: reviews created through the API wait IN_MODERATION
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    review_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    previous_moderation: dict[str, str] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)  # entity id → creation order (sort tie-breaker)


_REVIEW_KEYS = (
    "id",
    "namespace",
    "entityId",
    "content",
    "author",
    "moderation",
    "origin",
    "verified",
    "revision",
    "foundHelpful",
    "foundUnhelpful",
    "helpfulness",
    "publishCount",
    "reviewDate",
    "createdDate",
    "updatedDate",
    "reply",
    "relevanceScore",
)
_ALIASES = {
    "entity_id": "entityId",
    "product_id": "entityId",
    "contact_id": "contactId",
    "author_name": "authorName",
    "moderation_status": "moderationStatus",
    "status": "moderationStatus",
    "created_date": "createdDate",
    "review_date": "reviewDate",
    "origin_type": "originType",
    "found_helpful": "foundHelpful",
    "found_unhelpful": "foundUnhelpful",
    "review_id": "id",
    "reply_message": "replyMessage",
    "relevance_score": "relevanceScore",
}
_REVIEW_HELPER_FIELDS = {
    "id",
    "namespace",
    "entityId",
    "content",
    "title",
    "body",
    "rating",
    "media",
    "author",
    "contactId",
    "authorName",
    "moderationStatus",
    "origin",
    "originType",
    "verified",
    "createdDate",
    "reviewDate",
    "reply",
    "replyMessage",
    "foundHelpful",
    "foundUnhelpful",
    "relevanceScore",
}


#: Get Contact's projectable fields and fieldsets (§1.8).
_CONTACT_FIELDS = frozenset(
    {"source", "createdDate", "updatedDate", "lastActivity", "primaryInfo"}
    | {
        f"info.{key}"
        for key in (
            "name",
            "emails",
            "phones",
            "addresses",
            "company",
            "jobTitle",
            "picture",
            "birthdate",
            "locale",
            "labelKeys",
            "locations",
            "extendedFields",
        )
    }
)
_CONTACT_FIELDSETS = {
    "BASIC": frozenset({"primaryInfo", "info.name"}),
    "COMMUNICATION_DETAILS": frozenset({"primaryInfo", "info.name", "info.emails", "info.phones", "info.addresses"}),
    "EXTENDED": frozenset({"primaryInfo", "info.name", "info.extendedFields"}),
    "FULL": _CONTACT_FIELDS,
}


class WixState:
    def __init__(self, clock: Callable[[], float], app_id: str):
        self.clock = clock
        self.app_id = app_id
        self.instances: dict[str, Instance] = {}
        self.events: list[WixEvent] = []
        self.last_event: dict[str, Any] | None = None
        self.review_request_creates: list[dict[str, Any]] = []
        self.cursors: dict[str, dict[str, Any]] = {}
        self._sequence: dict[str, int] = {}  # entity id → last entityEventSequence
        self._counter = 0
        self._order_number = 10000

    # --- instances ---

    def add_instance(self, instance_id: str, *, moderation: bool = False) -> Instance:
        instance = self.instances.get(instance_id)
        if instance is None:
            instance = self.instances[instance_id] = Instance(instance_id, moderation)
        instance.moderation = moderation
        return instance

    def instance(self, instance_id: str) -> Instance:
        try:
            return self.instances[instance_id]
        except KeyError:
            raise ValueError(f"unknown Wix instance {instance_id!r}: call add_instance() first") from None

    def _next_seq(self, instance: Instance, entity_id: str) -> None:
        self._counter += 1
        instance.seq[entity_id] = self._counter

    # --- reviews: the Python side ---

    def add_review(self, instance_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        instance = self.instance(instance_id)
        values = _normalise(fields)
        unknown = set(values) - _REVIEW_HELPER_FIELDS
        if unknown:
            raise TypeError(f"add_review() got unknown fields {sorted(unknown)}")
        now = iso(self.clock())
        created = _as_iso(values.get("createdDate"), self.clock)
        status = values.get("moderationStatus", "APPROVED")
        if status not in MODERATION_STATUSES:
            raise ValueError(f"moderation status {status!r} is not one of {MODERATION_STATUSES}")
        origin = values.get("origin") or {"type": values.get("originType", "ORGANIC")}
        review = {
            "id": values.get("id") or str(uuid.uuid4()),
            "namespace": values.get("namespace", "stores"),
            "entityId": values.get("entityId") or str(uuid.uuid4()),
            "content": _content(values, {"title": None, "body": None, "media": [], "rating": 5}),
            "author": _author(values, {"contactId": str(uuid.uuid4()), "authorName": None}),
            "moderation": {"moderationStatus": status, "manuallyChanged": False},
            "origin": dict(origin),
            "verified": bool(values.get("verified", False)),
            "revision": "1",
            "foundHelpful": int(values.get("foundHelpful", 0)),
            "foundUnhelpful": int(values.get("foundUnhelpful", 0)),
            "publishCount": 1 if status == "APPROVED" else 0,
            "reviewDate": _as_iso(values["reviewDate"], self.clock) if values.get("reviewDate") else created,
            "createdDate": created,
            "updatedDate": max(created, now),
        }
        review["helpfulness"] = review["foundHelpful"] - review["foundUnhelpful"]
        if values.get("relevanceScore") is not None:
            review["relevanceScore"] = values["relevanceScore"]
        if values.get("reply") or values.get("replyMessage"):
            reply = values.get("reply") or {"message": values["replyMessage"]}
            review["reply"] = {"message": reply["message"], "createdDate": now, "updatedDate": now}
        _check_review(review, "review")
        if review["id"] in instance.reviews:
            raise ValueError(f"review {review['id']} already exists")
        self._check_unique(instance, review)
        return self._store_new_review(instance, review)

    def _store_new_review(self, instance: Instance, review: dict[str, Any]) -> dict[str, Any]:
        review = _ordered(review)
        instance.reviews[review["id"]] = review
        self._next_seq(instance, review["id"])
        instance.previous_moderation[review["id"]] = "UNKNOWN"
        created = self.review_event(instance.id, review["id"], "created")
        self.review_event(instance.id, review["id"], "moderation_status_changed")  # "also fires on create"
        if review["moderation"]["moderationStatus"] == "APPROVED":
            self.review_event(instance.id, review["id"], "review_published")
        self.last_event = created
        return copy.deepcopy(review)

    def _check_unique(self, instance: Instance, review: Mapping[str, Any], ignore: str | None = None) -> None:
        for other in instance.reviews.values():
            if (
                other["id"] != ignore
                and other["namespace"] == review["namespace"]
                and other["entityId"] == review["entityId"]
                and other["author"].get("contactId") == review["author"].get("contactId")
            ):
                raise app_error(
                    409,
                    "ALREADY_EXISTS",
                    "A review by this author already exists for this entity (one review per author per entity)",
                    reviewId=other["id"],
                )

    def update_review(self, instance_id: str, review_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        instance = self.instance(instance_id)
        review = self._review(instance, review_id)
        values = _normalise(fields)
        allowed = {
            "content",
            "title",
            "body",
            "rating",
            "media",
            "author",
            "authorName",
            "contactId",
            "entityId",
            "reviewDate",
            "verified",
            "foundHelpful",
            "foundUnhelpful",
            "reply",
            "replyMessage",
            "relevanceScore",
        }
        unknown = set(values) - allowed
        if unknown:
            raise TypeError(f"update_review() got unknown fields {sorted(unknown)} (use moderate() for the status)")
        updated = copy.deepcopy(review)
        updated["content"] = _content(values, updated["content"])
        updated["author"] = _author(values, updated["author"])
        for key in ("entityId", "verified", "foundHelpful", "foundUnhelpful", "relevanceScore"):
            if key in values:
                updated[key] = values[key]
        updated["helpfulness"] = updated["foundHelpful"] - updated["foundUnhelpful"]
        if values.get("reviewDate"):
            updated["reviewDate"] = _as_iso(values["reviewDate"], self.clock)
        if "reply" in values or "replyMessage" in values:
            message = (values.get("reply") or {}).get("message") if "reply" in values else values["replyMessage"]
            self._apply_reply(updated, message)
        _check_review(updated, "review")
        self._check_unique(instance, updated, ignore=review_id)
        return self._commit_update(instance, updated)

    def _commit_update(self, instance: Instance, updated: dict[str, Any], *, event: bool = True) -> dict[str, Any]:
        updated["revision"] = str(int(updated["revision"]) + 1)
        updated["updatedDate"] = iso(self.clock())
        instance.reviews[updated["id"]] = _ordered(updated)
        if event:
            self.last_event = self.review_event(instance.id, updated["id"], "updated")
        return copy.deepcopy(instance.reviews[updated["id"]])

    def _apply_reply(self, review: dict[str, Any], message: str | None) -> None:
        now = iso(self.clock())
        if message is None:
            review.pop("reply", None)
        else:
            created = review.get("reply", {}).get("createdDate", now)
            review["reply"] = {"message": message, "createdDate": created, "updatedDate": now}

    def moderate(self, instance_id: str, review_id: str, status: str, *, manually: bool = True) -> dict[str, Any]:
        instance = self.instance(instance_id)
        review = self._review(instance, review_id)
        if status not in MODERATION_STATUSES:
            raise ValueError(f"moderation status {status!r} is not one of {MODERATION_STATUSES}")
        previous = review["moderation"]["moderationStatus"]
        updated = copy.deepcopy(review)
        updated["moderation"] = {"moderationStatus": status, "manuallyChanged": manually}
        if status == "APPROVED" and previous != "APPROVED":
            updated["publishCount"] = updated.get("publishCount", 0) + 1
        instance.previous_moderation[review_id] = previous
        result = self._commit_update(instance, updated, event=False)
        changed = self.review_event(instance_id, review_id, "moderation_status_changed")
        if status == "APPROVED" and previous != "APPROVED":
            self.review_event(instance_id, review_id, "review_published")
        self.last_event = changed
        return result

    def delete_review(self, instance_id: str, review_id: str) -> dict[str, Any]:
        instance = self.instance(instance_id)
        review = self._review(instance, review_id)
        del instance.reviews[review_id]
        instance.deleted_reviews[review_id] = review
        self.last_event = self.review_event(instance_id, review_id, "deleted")
        return copy.deepcopy(review)

    def _review(self, instance: Instance, review_id: str) -> dict[str, Any]:
        review = instance.reviews.get(review_id)
        if review is None:
            raise not_found("Review", review_id)
        return review

    # --- reviews: the REST side ---

    def api_get_review(self, instance_id: str, review_id: str, private: bool) -> dict[str, Any]:
        review = self._review(self.instance(instance_id), review_id)
        if not private and not _published(review):
            raise not_found("Review", review_id)  # unpublished reviews are hidden without returnPrivateReviews
        return {"review": copy.deepcopy(review)}

    def api_create_review(self, instance_id: str, body: Any, identity: Mapping[str, Any]) -> dict[str, Any]:
        instance = self.instance(instance_id)
        draft = _object(body, "review")
        for required in ("namespace", "entityId"):
            if not isinstance(draft.get(required), str) or not draft[required]:
                raise invalid(f"review.{required}", f"{required} is required", "REQUIRED_FIELD")
        content = draft.get("content")
        if not isinstance(content, Mapping) or content.get("rating") is None:
            raise invalid("review.content.rating", "rating is required", "REQUIRED_FIELD")
        author = draft.get("author")
        if not isinstance(author, Mapping) or not author.get("contactId"):
            raise invalid(
                "review.author.contactId",
                "every review needs a contact: author.contactId is required",
                "REQUIRED_FIELD",
            )
        now = iso(self.clock())
        origin = (
            {"type": "APP", "appId": identity.get("appId", self.app_id)}
            if identity.get("identityType") == "APP"
            else {"type": "ORGANIC"}
        )
        status = "IN_MODERATION" if instance.moderation else "APPROVED"
        review = {
            "id": str(uuid.uuid4()),
            "namespace": draft["namespace"],
            "entityId": draft["entityId"],
            "content": {
                "title": content.get("title"),
                "body": content.get("body"),
                "media": list(content.get("media") or []),
                "rating": content["rating"],
            },
            "author": {"contactId": author["contactId"], "authorName": author.get("authorName") or None},
            "moderation": {"moderationStatus": status, "manuallyChanged": False},
            "origin": origin,
            "verified": False,
            "revision": "1",
            "foundHelpful": 0,
            "foundUnhelpful": 0,
            "helpfulness": 0,
            "publishCount": 1 if status == "APPROVED" else 0,
            "reviewDate": _as_iso(draft["reviewDate"], self.clock) if draft.get("reviewDate") else now,
            "createdDate": now,
            "updatedDate": now,
        }
        _check_review(review, "review")
        self._check_unique(instance, review)
        return {"review": self._store_new_review(instance, review)}

    def api_update_review(
        self, instance_id: str, review_id: str, body: Any, identity: Mapping[str, Any]
    ) -> dict[str, Any]:
        instance = self.instance(instance_id)
        patch = _object(body, "review")
        if patch.get("id") not in (None, "", review_id):
            raise invalid("review.id", f"review.id {patch['id']!r} does not match the path's {review_id!r}", "OTHER")
        if patch.get("revision") in (None, ""):
            raise invalid("review.revision", "revision is required", "REQUIRED_FIELD")
        review = self._review(instance, review_id)
        if str(patch["revision"]) != review["revision"]:
            raise app_error(
                409,
                "REVISION_MISMATCH",
                f"revision {patch['revision']} is stale: the review is at revision {review['revision']}",
                currentRevision=review["revision"],
            )
        if identity.get("identityType") == "APP" and review["origin"].get("type") != "APP":
            raise app_error(403, "PERMISSION_DENIED", "Apps can not create or update organic reviews")
        mask = body.get("fieldMask") if isinstance(body, Mapping) else None
        updated = copy.deepcopy(review)
        for path in _mask_paths(patch, mask):
            if path.split(".")[0] not in ("namespace", "entityId", "content", "author", "reviewDate"):
                continue  # read-only fields are ignored, as Wix ignores them
            _set_path(updated, path, _path_value(patch, path) if "." in path else patch.get(path))
        if isinstance(updated.get("reviewDate"), str):
            updated["reviewDate"] = _as_iso(updated["reviewDate"], self.clock)
        updated["content"].setdefault("media", [])
        _check_review(updated, "review")
        self._check_unique(instance, updated, ignore=review_id)
        return {"review": self._commit_update(instance, updated)}

    def api_delete_review(self, instance_id: str, review_id: str) -> dict[str, Any]:
        return {"review": self.delete_review(instance_id, review_id)}

    def api_moderate(self, instance_id: str, review_id: str, body: Any) -> dict[str, Any]:
        status = body.get("status") if isinstance(body, Mapping) else None
        if status not in ("APPROVED", "REJECTED"):
            raise invalid("status", "status must be APPROVED or REJECTED", "OTHER")
        self._review(self.instance(instance_id), review_id)
        return {"review": self.moderate(instance_id, review_id, status)}

    def api_reply(self, instance_id: str, review_id: str, message: str | None) -> dict[str, Any]:
        instance = self.instance(instance_id)
        updated = copy.deepcopy(self._review(instance, review_id))
        if message is not None and (not isinstance(message, str) or not message):
            raise invalid("message", "message is required", "REQUIRED_FIELD")
        self._apply_reply(updated, message)
        return {"review": self._commit_update(instance, updated)}

    def review_candidates(self, instance_id: str, private: bool) -> list[tuple[dict[str, Any], int]]:
        instance = self.instance(instance_id)
        return [(r, instance.seq[r["id"]]) for r in instance.reviews.values() if private or _published(r)]

    def request_candidates(self, instance_id: str) -> list[tuple[dict[str, Any], int]]:
        instance = self.instance(instance_id)
        return [(r, instance.seq[r["id"]]) for r in instance.review_requests.values()]

    # --- queries ---

    def run_query(
        self, instance_id: str, kind: str, query: Any, *, private: bool = False
    ) -> tuple[list[dict[str, Any]], str | None, bool]:
        """One page of Query Reviews (`kind` "reviews") or Query Review Requests ("review_requests").

        Returns (entities, next cursor or None, hasNext). The cursor holds filter, sort, visibility and
        the last key, so a following request passes only `cursorPaging` (the CursorQuery rule)."""
        fields = REVIEW_FIELDS if kind == "reviews" else REVIEW_REQUEST_FIELDS
        if query is None:
            query = {}
        if not isinstance(query, Mapping):
            raise invalid("query", "query must be an object", "FORMAT")
        if query.get("paging"):
            raise invalid("query.paging", "offset paging is not supported here: use cursorPaging", "OTHER")
        paging = query.get("cursorPaging") or {}
        if not isinstance(paging, Mapping):
            raise invalid("query.cursorPaging", "cursorPaging must be an object", "FORMAT")
        limit = paging.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise invalid("query.cursorPaging.limit", f"{limit!r} is not an integer", "FORMAT")
        if limit is not None and limit < 0:
            raise invalid("query.cursorPaging.limit", "limit must be at least 0", "MIN", min=0)
        if limit is not None and limit > QUERY_LIMIT_MAX:
            raise invalid(
                "query.cursorPaging.limit", f"limit must be at most {QUERY_LIMIT_MAX}", "MAX", max=QUERY_LIMIT_MAX
            )
        limit = limit or QUERY_LIMIT_DEFAULT
        cursor = paging.get("cursor")
        after = None
        if cursor:
            if query.get("filter") or query.get("sort"):
                raise invalid(
                    "query.cursorPaging.cursor",
                    "a request with a cursor must not pass filter or sort: the cursor already holds them",
                    "OTHER",
                )
            state = self.cursors.get(cursor) if isinstance(cursor, str) else None
            if state is None or state["instance"] != instance_id or state["kind"] != kind:
                raise app_error(400, "INVALID_CURSOR", "The cursor is invalid or belongs to another query")
            filt, sort, private, after = state["filter"], state["sort"], state["private"], state["after"]
        else:
            filt, sort = query.get("filter"), query.get("sort")
        predicate = compile_filter(filt, fields)
        order = compile_sort(sort, fields)
        candidates = (
            self.review_candidates(instance_id, private) if kind == "reviews" else self.request_candidates(instance_id)
        )
        keyed = sorted(
            ((sort_key(e, seq, order, fields), e) for e, seq in candidates if predicate(e)), key=lambda pair: pair[0]
        )
        if after is not None:
            keyed = [pair for pair in keyed if pair[0] > after]
        page, has_next = keyed[:limit], len(keyed) > limit
        next_cursor = None
        if has_next:
            next_cursor = uuid.uuid4().hex + uuid.uuid4().hex
            self.cursors[next_cursor] = {
                "instance": instance_id,
                "kind": kind,
                "filter": copy.deepcopy(filt),
                "sort": copy.deepcopy(sort),
                "private": private,
                "after": page[-1][0],
            }
        return [copy.deepcopy(e) for _, e in page], next_cursor, has_next

    def count(self, instance_id: str, kind: str, filt: Any, *, private: bool = False) -> int:
        fields = REVIEW_FIELDS if kind == "reviews" else REVIEW_REQUEST_FIELDS
        predicate = compile_filter(filt, fields, "filter")
        candidates = (
            self.review_candidates(instance_id, private) if kind == "reviews" else self.request_candidates(instance_id)
        )
        return sum(1 for entity, _ in candidates if predicate(entity))

    # --- orders ---

    def make_order(
        self,
        instance_id: str,
        *,
        order_id: str | None = None,
        contact_id: Any = _DEFAULT,
        stores_items: int = 2,
        other_items: int = 0,
        other_app_id: str = BOOKINGS_APP_ID,
        prices: list[float] | None = None,
        fulfillment_status: str = "NOT_FULFILLED",
        status: str = "APPROVED",
        payment_status: str = "PAID",
        email: str | None = None,
        catalog_item_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        instance = self.instance(instance_id)
        now = iso(self.clock())
        self._order_number += 1
        contact = str(uuid.uuid4()) if contact_id is _DEFAULT else contact_id
        buyer: dict[str, Any] = {
            "email": email or f"buyer{self._order_number}@example.com",
            "visitorId": str(uuid.uuid4()),
        }
        if contact:
            buyer = {"contactId": contact, **buyer}
        count = stores_items + other_items
        amounts = list(prices) if prices is not None else [10.0 * (i + 1) for i in range(count)]
        if len(amounts) != count:
            raise ValueError(f"prices has {len(amounts)} entries for {count} line items")
        ids = list(catalog_item_ids or [])
        line_items = []
        for index in range(count):
            app = STORES_APP_ID if index < stores_items else other_app_id
            amount = f"{amounts[index]:.2f}"
            line_items.append(
                {
                    "id": str(uuid.uuid4()),
                    "productName": {"original": f"Product {index + 1}", "translated": f"Product {index + 1}"},
                    "quantity": 1,
                    "catalogReference": {
                        "catalogItemId": ids[index] if index < len(ids) else str(uuid.uuid4()),
                        "appId": app,
                        "options": {},
                    },
                    "price": {"amount": amount, "formattedAmount": f"${amount}"},
                }
            )
        total = f"{sum(amounts):.2f}"
        order = {
            "id": order_id or str(uuid.uuid4()),
            "number": str(self._order_number),
            "createdDate": now,
            "updatedDate": now,
            "purchasedDate": now,
            "status": status,
            "paymentStatus": payment_status,
            "fulfillmentStatus": fulfillment_status,
            "checkoutId": str(uuid.uuid4()),
            "currency": "USD",
            "buyerInfo": buyer,
            "lineItems": line_items,
            "priceSummary": {
                "subtotal": {"amount": total, "formattedAmount": f"${total}"},
                "total": {"amount": total, "formattedAmount": f"${total}"},
            },
        }
        instance.orders[order["id"]] = order
        return copy.deepcopy(order)

    def add_order(self, instance_id: str, order: Mapping[str, Any]) -> dict[str, Any]:
        if not order.get("id"):
            raise ValueError("an order needs an id")
        stored = copy.deepcopy(dict(order))
        self.instance(instance_id).orders[stored["id"]] = stored
        return copy.deepcopy(stored)

    def order_event(
        self, instance_id: str, order: Mapping[str, Any], slug: str, *, as_json: bool = False, **body: Any
    ) -> dict[str, Any]:
        """A `wix.ecom.v1.order` domain event: `created`/`updated` carry the order as entity, actions a body."""
        if slug not in ORDER_EVENT_TYPES:
            raise ValueError(f"order event slug {slug!r} is not one of {sorted(ORDER_EVENT_TYPES)}")
        instance = self.instance(instance_id)
        stored = copy.deepcopy(dict(order))
        instance.orders[stored["id"]] = stored
        if slug == "created":
            payload = {"createdEvent": _body("entity", stored, as_json)}
        elif slug == "updated":
            payload = {"updatedEvent": _body("currentEntity", stored, as_json)}
        else:
            payload = {"actionEvent": _body("body", {"order": copy.deepcopy(stored), **body}, as_json)}
        event = self._domain_event(ORDER_FQDN, slug, stored["id"], payload)
        self._record(ORDER_EVENT_TYPES[slug], instance_id, event)
        return event

    def order_fulfilled_event(
        self,
        instance_id: str,
        order: Mapping[str, Any],
        *,
        previous: str = "NOT_FULFILLED",
        new: str = "FULFILLED",
        action: str | None = None,
        as_json: bool = False,
    ) -> dict[str, Any]:
        updated = copy.deepcopy(dict(order))
        updated["fulfillmentStatus"] = new
        body: dict[str, Any] = {"previousFulfillmentStatus": previous, "newFulfillmentStatus": new}
        if action is not None:
            body["action"] = action
        return self.order_event(instance_id, updated, "fulfilled", as_json=as_json, **body)

    # --- review requests ---

    def api_create_review_request(self, instance_id: str, body: Any, identity: Mapping[str, Any]) -> dict[str, Any]:
        instance = self.instance(instance_id)
        draft = _object(body, "reviewRequest")
        channel = draft.get("communicationChannel")
        if channel in (None, ""):
            raise invalid("reviewRequest.communicationChannel", "communicationChannel is required", "REQUIRED_FIELD")
        if channel != "EMAIL":
            raise invalid(
                "reviewRequest.communicationChannel", f"{channel!r} is not a supported channel (EMAIL)", "OTHER"
            )
        recipient = draft.get("recipient")
        if not isinstance(recipient, Mapping) or not recipient.get("contactId"):
            raise invalid("reviewRequest.recipient.contactId", "recipient.contactId is required", "REQUIRED_FIELD")
        namespace = draft.get("namespace", "stores")
        if namespace != "stores":  # "exclusively available within the `stores` reviews namespace"
            raise invalid("reviewRequest.namespace", f"namespace {namespace!r} is not supported (stores)", "OTHER")
        items = draft.get("items") or []
        if not isinstance(items, list) or any(not isinstance(i, Mapping) for i in items):
            raise invalid("reviewRequest.items", "items must be an array of {catalogItemId}", "FORMAT")
        if len(items) > REVIEW_REQUEST_ITEMS_MAX:
            raise invalid(
                "reviewRequest.items", f"at most {REVIEW_REQUEST_ITEMS_MAX} items", "MAX", max=REVIEW_REQUEST_ITEMS_MAX
            )
        item_ids = [i.get("catalogItemId") for i in items if i.get("catalogItemId")]
        order_ref = draft.get("order") if isinstance(draft.get("order"), Mapping) else {}
        order_id = order_ref.get("id")
        if identity.get("identityType") not in ("APP", "WIX_USER"):
            raise app_error(
                428,
                "INITIATOR_IDENTITY_NOT_SUPPORTED",
                "The identity used to call the method isn't supported for creating review requests.",
            )
        if not order_id and not item_ids:
            raise app_error(
                400,
                "EITHER_ORDER_OR_ITEMS_REQUIRED",
                "Must specify either the `order.id` or at least 1 `items.catalogItemId`.",
            )
        order_out = None
        if order_id:
            order = instance.orders.get(order_id)
            if order is None:
                raise app_error(428, "ORDER_NOT_FOUND", "Couldn't find the order.")
            line_items = order.get("lineItems") or []
            if not line_items:
                raise app_error(428, "ORDER_IS_EMPTY", "Order has no items.")
            stores = [li for li in line_items if _catalog(li).get("appId") == STORES_APP_ID]
            if item_ids:  # both: the listed items from that order (assumption: others are dropped)
                in_order = {_catalog(li).get("catalogItemId") for li in stores}
                item_ids = [i for i in item_ids if i in in_order]
            else:  # order only: the 5 most expensive items (of the Stores catalog: namespace stores)
                ranked = sorted(stores, key=lambda li: -_price(li))
                item_ids = []
                for li in ranked:
                    cid = _catalog(li).get("catalogItemId")
                    if cid and cid not in item_ids:
                        item_ids.append(cid)
                item_ids = item_ids[:REVIEW_REQUEST_ITEMS_MAX]
            if not item_ids:  # assumption: an order with nothing reviewable in `stores` counts as empty
                raise app_error(428, "ORDER_IS_EMPTY", "Order has no items.")
            order_out = {"id": order_id, "number": order.get("number")}
        now = iso(self.clock())
        requested_by = {"identityType": identity["identityType"]}
        requested_by.update(
            {"appId": identity.get("appId", self.app_id)}
            if identity["identityType"] == "APP"
            else {"wixUserId": identity.get("wixUserId")}
        )
        request = {"id": str(uuid.uuid4()), "revision": "1", "createdDate": now, "updatedDate": now}
        if draft.get("sendDate"):
            request["sendDate"] = _as_iso(draft["sendDate"], self.clock)
        request["namespace"] = namespace
        if order_out:
            request["order"] = order_out
        request.update(
            {
                "items": [{"catalogItemId": cid} for cid in item_ids],
                "recipient": {"contactId": recipient["contactId"]},
                "communicationChannel": "EMAIL",
                "status": "SCHEDULED",
            }
        )
        if draft.get("automationActivationId"):
            request["automationActivationId"] = draft["automationActivationId"]
        request["requestedBy"] = requested_by
        instance.review_requests[request["id"]] = request
        self._next_seq(instance, request["id"])
        self.review_request_creates.append(copy.deepcopy(body))
        event = self._domain_event(
            REVIEW_REQUEST_FQDN, "created", request["id"], {"createdEvent": {"entity": copy.deepcopy(request)}}
        )
        self._record(REVIEW_REQUEST_EVENT_TYPES["created"], instance_id, event)
        return {"reviewRequest": copy.deepcopy(request)}

    def _review_request(self, instance_id: str, request_id: str) -> dict[str, Any]:
        request = self.instance(instance_id).review_requests.get(request_id)
        if request is None:
            raise not_found("ReviewRequest", request_id)
        return request

    def api_get_review_request(self, instance_id: str, request_id: str) -> dict[str, Any]:
        return {"reviewRequest": copy.deepcopy(self._review_request(instance_id, request_id))}

    def api_delete_review_request(self, instance_id: str, request_id: str) -> dict[str, Any]:
        request = self._review_request(instance_id, request_id)
        if request["status"] != "CANCELED":
            raise app_error(
                428,
                "REVIEW_REQUEST_NOT_CANCELED",
                "Only review requests in the CANCELED state can be deleted.",
                currentStatus=request["status"],
            )
        del self.instance(instance_id).review_requests[request_id]
        event = self._domain_event(
            REVIEW_REQUEST_FQDN, "deleted", request_id, {"deletedEvent": {"deletedEntity": copy.deepcopy(request)}}
        )
        self._record(REVIEW_REQUEST_EVENT_TYPES["deleted"], instance_id, event)
        return {}

    def set_review_request_status(
        self, instance_id: str, request_id: str, status: str, **options: Any
    ) -> dict[str, Any]:
        if status not in REVIEW_REQUEST_STATUSES:
            raise ValueError(f"status {status!r} is not one of {REVIEW_REQUEST_STATUSES}")
        request = self._review_request(instance_id, request_id)
        request.pop("sentOptions", None)
        request.pop("failedOptions", None)
        request["status"] = status
        if status == "SENT":
            request["sentOptions"] = {"opened": bool(options.get("opened", False))}
        if status == "FAILED":
            request["failedOptions"] = {
                "reason": options.get("reason", "UNKNOWN_FAILURE_REASON"),
                "message": options.get("message"),
            }
        request["revision"] = str(int(request["revision"]) + 1)
        request["updatedDate"] = iso(self.clock())
        event = self._domain_event(
            REVIEW_REQUEST_FQDN, "updated", request_id, {"updatedEvent": {"currentEntity": copy.deepcopy(request)}}
        )
        self._record(REVIEW_REQUEST_EVENT_TYPES["updated"], instance_id, event)
        return copy.deepcopy(request)

    def api_cancel_by_filter(self, instance_id: str, body: Any) -> dict[str, Any]:
        filt = body.get("filter") if isinstance(body, Mapping) else None
        predicate = compile_filter(filt, REVIEW_REQUEST_FIELDS, "filter")
        for request in list(self.instance(instance_id).review_requests.values()):
            # "All scheduled review requests with automation activation id that meet the filter are canceled."
            if request["status"] == "SCHEDULED" and request.get("automationActivationId") and predicate(request):
                self.set_review_request_status(instance_id, request["id"], "CANCELED")
        return {"jobId": str(uuid.uuid4())}

    # --- events ---

    def review_event(self, instance_id: str, review_id: str, kind: str, *, as_json: bool = False) -> dict[str, Any]:
        if kind not in REVIEW_EVENT_TYPES:
            raise ValueError(f"review event kind {kind!r} is not one of {sorted(REVIEW_EVENT_TYPES)}")
        instance = self.instance(instance_id)
        review = instance.reviews.get(review_id) or instance.deleted_reviews.get(review_id)
        if review is None:
            raise ValueError(f"unknown review {review_id!r} in instance {instance_id!r}")
        review = copy.deepcopy(review)
        if kind == "created":
            payload = {"createdEvent": _body("entity", review, as_json)}
        elif kind == "updated":
            payload = {"updatedEvent": _body("currentEntity", review, as_json)}
        elif kind == "deleted":
            payload = {"deletedEvent": _body("deletedEntity", review, as_json)}
        elif kind == "moderation_status_changed":
            previous = instance.previous_moderation.get(review_id, "UNKNOWN")
            payload = {"actionEvent": _body("body", {"review": review, "previousModerationStatus": previous}, as_json)}
        else:
            payload = {"actionEvent": _body("body", {"review": review}, as_json)}
        event = self._domain_event(REVIEW_FQDN, kind, review_id, payload)
        self._record(REVIEW_EVENT_TYPES[kind], instance_id, event)
        return event

    def _domain_event(self, fqdn: str, slug: str, entity_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        sequence = self._sequence.get(entity_id, 0) + 1
        self._sequence[entity_id] = sequence
        return {
            "id": str(uuid.uuid4()),
            "entityFqdn": fqdn,
            "slug": slug,
            "entityId": entity_id,
            "eventTime": iso(self.clock()),
            "triggeredByAnonymizeRequest": False,
            "entityEventSequence": str(sequence),
            **payload,
        }

    # --- contacts ---

    def add_contact(
        self,
        instance_id: str,
        contact_id: str | None,
        email: str | None,
        *,
        more_emails: tuple[str, ...] = (),
        first: str | None = None,
        last: str | None = None,
    ) -> dict[str, Any]:
        """A contact as Get Contact returns it (FULL): `email` is its primary e-mail, `more_emails`
        further ones (tag MAIN, not primary); with neither it has no e-mail at all."""
        instance = self.instance(instance_id)
        now = iso(self.clock())
        contact_id = contact_id or str(uuid.uuid4())
        emails = [{"id": str(uuid.uuid4()), "tag": "MAIN", "email": email, "primary": True}] if email else []
        emails += [{"id": str(uuid.uuid4()), "tag": "MAIN", "email": more} for more in more_emails]
        name = {k: v for k, v in (("first", first), ("last", last)) if v}
        contact: dict[str, Any] = {
            "id": contact_id,
            "revision": 1,
            "source": {"sourceType": "WIX_APP", "appId": STORES_APP_ID},
            "createdDate": now,
            "updatedDate": now,
            "lastActivity": {"activityDate": now, "activityType": "CONTACT_CREATED"},
            "primaryInfo": {"email": email} if email else {},
            "info": {"name": name, "emails": {"items": emails}, "phones": {"items": []}, "addresses": {"items": []}},
        }
        if email:
            contact["primaryEmail"] = {
                "email": email,
                "subscriptionStatus": "NOT_SET",
                "deliverabilityStatus": "NOT_SET",
            }
        instance.contacts[contact_id] = contact
        return copy.deepcopy(contact)

    def delete_contact(self, instance_id: str, contact_id: str) -> None:
        if self.instance(instance_id).contacts.pop(contact_id, None) is None:
            raise ValueError(f"no contact {contact_id} on instance {instance_id}")

    def api_get_contact(
        self, instance_id: str, contact_id: str, fields: list[str], fieldsets: list[str]
    ) -> dict[str, Any]:
        contact = self.instance(instance_id).contacts.get(contact_id)
        if contact is None:
            raise not_found("Contact", contact_id)
        wanted = set(fields)
        for fieldset in fieldsets:
            if fieldset not in _CONTACT_FIELDSETS:
                raise invalid("fieldsets", f"{fieldset!r} is not one of {', '.join(_CONTACT_FIELDSETS)}", "FORMAT")
            wanted |= _CONTACT_FIELDSETS[fieldset]
        unknown = sorted(wanted - _CONTACT_FIELDS)
        if unknown:
            raise invalid("fields", f"unsupported fields {unknown}", "FORMAT")
        if not wanted or "FULL" in fieldsets:  # neither given means FULL
            return {"contact": copy.deepcopy(contact)}
        projected: dict[str, Any] = {"id": contact["id"], "revision": contact["revision"]}
        for name in sorted(wanted):
            if name.startswith("info."):
                key = name.removeprefix("info.")
                if key in contact["info"]:
                    projected.setdefault("info", {})[key] = copy.deepcopy(contact["info"][key])
            elif name in contact:
                projected[name] = copy.deepcopy(contact[name])
        return {"contact": projected}

    def _record(self, event_type: str, instance_id: str, event: dict[str, Any]) -> None:
        self.events.append(WixEvent(event_type, instance_id, copy.deepcopy(event)))


# --- helpers --------------------------------------------------------------------------------------


def _normalise(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {_ALIASES.get(k, k): v for k, v in fields.items()}


def _content(values: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    content = dict(base)
    content.update(values.get("content") or {})
    for key in ("title", "body", "rating", "media"):
        if key in values:
            content[key] = values[key]
    content["media"] = list(content.get("media") or [])
    return content


def _author(values: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    author = dict(base)
    author.update(values.get("author") or {})
    for key in ("contactId", "authorName"):
        if key in values:
            author[key] = values[key]
    return author


def _check_review(review: Mapping[str, Any], where: str) -> None:
    content = review["content"]
    rating = content.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise invalid(
            f"{where}.content.rating",
            "rating must be an integer from 1 to 5",
            "MIN" if isinstance(rating, int) and not isinstance(rating, bool) and rating < 1 else "MAX",
        )
    for key in ("title", "body"):
        value = content.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 3000):
            raise invalid(f"{where}.content.{key}", f"{key} must be a string of at most 3000 characters", "MAX_LENGTH")
    if len(content.get("media") or []) > 10:
        raise invalid(f"{where}.content.media", "at most 10 media items", "MAX")
    name = review["author"].get("authorName")
    if name is not None and (not isinstance(name, str) or len(name) > 100):
        raise invalid(f"{where}.author.authorName", "authorName must be at most 100 characters", "MAX_LENGTH")
    entity_id = review.get("entityId")
    if not isinstance(entity_id, str) or not entity_id or len(entity_id) > 36:
        raise invalid(f"{where}.entityId", "entityId is required, at most 36 characters", "MAX_LENGTH")
    if not isinstance(review.get("namespace"), str) or not review["namespace"]:
        raise invalid(f"{where}.namespace", "namespace is required", "REQUIRED_FIELD")


def _published(review: Mapping[str, Any]) -> bool:
    return review["moderation"]["moderationStatus"] == "APPROVED"


def _ordered(review: Mapping[str, Any]) -> dict[str, Any]:
    ordered = {k: review[k] for k in _REVIEW_KEYS if k in review}
    ordered.update({k: v for k, v in review.items() if k not in ordered})
    return ordered


def _object(body: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get(key), Mapping):
        raise invalid(key, f"{key} is required", "REQUIRED_FIELD")
    return body[key]


def _mask_paths(patch: Mapping[str, Any], mask: Any) -> list[str]:
    if mask:
        if isinstance(mask, str):
            paths = mask.split(",")
        else:
            paths = list(mask.get("paths", []) if isinstance(mask, Mapping) else mask)
        return [p.strip().removeprefix("review.") for p in paths if p.strip()]
    paths: list[str] = []
    for key, value in patch.items():  # no mask: the fields that were sent
        if isinstance(value, Mapping) and key in ("content", "author"):
            paths.extend(f"{key}.{sub}" for sub in value)
        else:
            paths.append(key)
    return paths


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = copy.deepcopy(value)


def _catalog(line_item: Mapping[str, Any]) -> Mapping[str, Any]:
    return line_item.get("catalogReference") or {}


def _price(line_item: Mapping[str, Any]) -> float:
    price = line_item.get("price") or {}
    try:
        return float(price.get("amount", 0))
    except (TypeError, ValueError):
        return 0.0


def _body(key: str, value: Any, as_json: bool) -> dict[str, Any]:
    """`{entity: {...}}`, or the proto form `{entityAsJson: "..."}` that §3 says to parse too."""
    return {f"{key}AsJson": json.dumps(value, separators=(",", ":"))} if as_json else {key: value}
