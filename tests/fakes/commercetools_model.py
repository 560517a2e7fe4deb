"""The commercetools emulator's project state and rules: Reviews, Products, Types, States.

Pure Python, no HTTP: `tests/fakes/commercetools.py` is the web layer around it. Every rule here
follows the real API (docs/platforms/commercetools.md §1, §2), not the PyPI mock (§3): strict
ReviewDraft validation, uniqueness of `key` and `uniquenessValue`, references that must exist, all
11 review update actions, real error bodies, and the query language subset the connector needs.

Errors are raised as `ApiError`; the caller turns them into the JSON envelope
`{statusCode, message, errors: [{code, message, ...}]}`. Nothing here is thread-safe by itself:
the emulator holds one lock around every call.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

RATING_MIN, RATING_MAX = -100, 100
QUERY_LIMIT_MAX, QUERY_OFFSET_MAX, TOTAL_CAP = 500, 10_000, 10_000
INCLUDED_ROLE = "ReviewIncludedInStatistics"
STATE_TYPES = (
    "OrderState",
    "LineItemState",
    "ProductState",
    "ReviewState",
    "PaymentState",
    "QuoteRequestState",
    "StagedQuoteState",
    "QuoteState",
)
STATE_ROLES = (INCLUDED_ROLE, "Return")
RESOURCE_TYPE_IDS = (
    "address",
    "asset",
    "business-unit",
    "cart",
    "cart-discount",
    "category",
    "channel",
    "customer",
    "customer-group",
    "discount-code",
    "inventory-entry",
    "line-item",
    "order",
    "order-edit",
    "payment",
    "product",
    "product-price",
    "product-selection",
    "review",
    "shipping",
    "shipping-method",
    "shopping-list",
    "store",
    "transaction",
)
FIELD_TYPES = ("String", "Boolean", "Number", "DateTime", "LocalizedString", "Set")
REVIEW_DRAFT_FIELDS = (
    "key",
    "uniquenessValue",
    "locale",
    "authorName",
    "title",
    "text",
    "target",
    "state",
    "rating",
    "customer",
    "custom",
)
REVIEW_ORDER = (
    "id",
    "version",
    "createdAt",
    "lastModifiedAt",
    "lastModifiedBy",
    "createdBy",
    "key",
    "uniquenessValue",
    "locale",
    "authorName",
    "title",
    "text",
    "target",
    "rating",
    "state",
    "includedInStatistics",
    "customer",
    "custom",
)
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{2,256}")
_FIELD_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{2,36}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})")


# --- errors -------------------------------------------------------------------------------------


class ApiError(Exception):
    """One API error answer: the HTTP status and the `errors` entries (the first one gives `message`)."""

    def __init__(self, status: int, code: str, message: str, *, top: Mapping[str, Any] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.errors = [{"code": code, "message": message, **extra}]
        self.top = dict(top or {})  # extra top-level fields (OAuth-style `error`, `error_description`)

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status, "message": self.errors[0]["message"], "errors": self.errors, **self.top}


def invalid_json(detail: str) -> ApiError:
    return ApiError(400, "InvalidJsonInput", "Request body does not contain valid JSON.", detailedErrorMessage=detail)


def invalid_input(message: str) -> ApiError:
    return ApiError(400, "InvalidInput", message)


def invalid_field(field: str, value: Any, message: str | None = None) -> ApiError:
    message = message or f"The value '{json.dumps(value)}' is not valid for field '{field}'."
    return ApiError(400, "InvalidField", message, field=field, invalidValue=value)


def invalid_operation(message: str) -> ApiError:
    return ApiError(400, "InvalidOperation", message)


def required_field(field: str) -> ApiError:
    return ApiError(400, "RequiredField", f"A value is required for field '{field}'.", field=field)


def duplicate_field(field: str, value: Any) -> ApiError:
    return ApiError(
        400,
        "DuplicateField",
        f"A duplicate value '{json.dumps(value)}' exists for field '{field}'.",
        field=field,
        duplicateValue=value,
    )


def referenced_not_found(type_id: str, how: str, value: str) -> ApiError:
    predicate = f"with key '{value}'" if how == "key" else f"with identifier '{value}'"
    message = (
        f"The referenced object of type '{type_id}' {predicate} was not found. It either doesn't exist, "
        "or it can't be accessed from this endpoint (e.g., if the endpoint filters by store or customer "
        "account)."
    )
    return ApiError(400, "ReferencedResourceNotFound", message, typeId=type_id, **{how: value})


def not_found(how: str, value: str) -> ApiError:
    label = "key" if how == "key" else "ID"
    return ApiError(404, "ResourceNotFound", f"The Resource with {label} '{value}' was not found.")


def concurrent_modification(resource_id: str, expected: Any, current: int) -> ApiError:
    message = f"Object {resource_id} has a different version than expected. Expected: {expected} - Actual: {current}."
    return ApiError(409, "ConcurrentModification", message, currentVersion=current)


# --- JSON shape checks (InvalidJsonInput, like the real API's deserializer) ---------------------


def _path(parent: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{parent}[{name}]"
    return f"{parent}.{name}" if parent else name


def _object(value: Any, path: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_json(f"{path or 'body'}: JSON object expected.")
    if allowed is not None:
        for name in value:
            if name not in allowed:
                raise invalid_json(f"{_path(path, name)}: Unknown field.")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise invalid_json(f"{path}: JSON String expected.")
    return value


def _number(value: Any, path: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_json(f"{path}: JSON Number expected.")
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_json(f"{path}: JSON Boolean expected.")
    return value


def _array(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_json(f"{path}: JSON Array expected.")
    return value


def _required(container: Mapping[str, Any], name: str, path: str) -> Any:
    if container.get(name) is None:
        raise invalid_json(f"{_path(path, name)}: Missing required value.")
    return container[name]


def _localized(value: Any, path: str) -> dict[str, str]:
    _object(value, path)
    for locale, text in value.items():
        _string(text, _path(path, locale))
    return value


def _identifier(value: Any, path: str, type_ids: tuple[str, ...]) -> tuple[str, str, str]:
    """A ResourceIdentifier → (typeId, "id" | "key", value). typeId may be left out when only one fits."""
    _object(value, path, ("typeId", "id", "key"))
    type_id = value.get("typeId")
    if type_id is None and len(type_ids) == 1:
        type_id = type_ids[0]
    if type_id not in type_ids:
        raise invalid_json(f"{_path(path, 'typeId')}: one of {', '.join(map(repr, type_ids))} expected.")
    if value.get("id") is not None:
        return type_id, "id", _string(value["id"], _path(path, "id"))
    if value.get("key") is not None:
        return type_id, "key", _string(value["key"], _path(path, "key"))
    raise invalid_json(f"{path}: a ResourceIdentifier needs either 'id' or 'key'.")


def parse_datetime(text: str) -> datetime | None:
    if not isinstance(text, str) or not _DATETIME.fullmatch(text):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def iso(t: float) -> str:
    moment = datetime.fromtimestamp(t, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- the project ----------------------------------------------------------------------------------


class Project:
    """Everything one commercetools project holds, by resource kind, each keyed by id."""

    def __init__(self, *, clock: Callable[[], float], client_id: str):
        self.clock = clock
        self.client_id = client_id
        self.clear()

    def clear(self) -> None:
        self.reviews: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.types: dict[str, dict[str, Any]] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self._review_keys: dict[str, str] = {}  # key → id
        self._review_uniqueness: dict[str, str] = {}  # uniquenessValue → id

    def collection(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            "reviews": self.reviews,
            "products": self.products,
            "types": self.types,
            "states": self.states,
            "customers": self.customers,
            "channels": self.channels,
        }[kind]

    def _base(self, key: str | None, resource_id: str | None = None) -> dict[str, Any]:
        now = iso(self.clock())
        resource = {"id": resource_id or str(uuid.uuid4()), "version": 1, "createdAt": now, "lastModifiedAt": now}
        if key is not None:
            resource["key"] = key
        return resource

    def find(self, kind: str, how: str, value: str) -> dict[str, Any] | None:
        if kind == "reviews" and how == "key":
            resource_id = self._review_keys.get(value)
            return self.reviews.get(resource_id) if resource_id else None
        items = self.collection(kind)
        if how == "id":
            return items.get(value)
        return next((item for item in items.values() if item.get("key") == value), None)

    def get(self, kind: str, how: str, value: str) -> dict[str, Any]:
        found = self.find(kind, how, value)
        if found is None:
            raise not_found(how, value)
        return found

    def _reference(self, identifier: tuple[str, str, str]) -> dict[str, Any]:
        """The existing resource a (typeId, how, value) identifier names, else ReferencedResourceNotFound."""
        type_id, how, value = identifier
        kind = {
            "product": "products",
            "state": "states",
            "type": "types",
            "customer": "customers",
            "channel": "channels",
        }.get(type_id)
        found = self.find(kind, how, value) if kind else None
        if found is None:
            raise referenced_not_found(type_id, how, value)
        return found

    # --- products and customers (made from Python only) ---------------------------------------

    def add_product(self, key: str | None, resource_id: str | None = None) -> dict[str, Any]:
        if key is not None and self.find("products", "key", key) is not None:
            raise duplicate_field("key", key)
        product = self._base(key, resource_id)
        name = {"en": key or product["id"]}
        data = {"name": name, "slug": dict(name), "variants": [], "masterVariant": {"id": 1}}
        product["masterData"] = {
            "current": data,
            "staged": copy.deepcopy(data),
            "published": True,
            "hasStagedChanges": False,
        }
        self.products[product["id"]] = product
        return product

    def add_channel(self, key: str, resource_id: str | None = None) -> dict[str, Any]:
        if self.find("channels", "key", key) is not None:
            raise duplicate_field("key", key)
        channel = self._base(key, resource_id) | {"roles": ["ProductDistribution"]}
        self.channels[channel["id"]] = channel
        return channel

    def product_json(self, product: Mapping[str, Any]) -> dict[str, Any]:
        """The product with its live reviewRatingStatistics (absent while no review counts)."""
        out = copy.deepcopy(dict(product))
        ratings = [
            r["rating"]
            for r in self.reviews.values()
            if r.get("includedInStatistics")
            and r.get("rating") is not None
            and r.get("target") == {"typeId": "product", "id": product["id"]}
        ]
        if ratings:
            distribution: dict[str, int] = {}
            for rating in sorted(ratings):
                distribution[str(rating)] = distribution.get(str(rating), 0) + 1
            out["reviewRatingStatistics"] = {
                "averageRating": round(sum(ratings) / len(ratings), 5),
                "highestRating": max(ratings),
                "lowestRating": min(ratings),
                "count": len(ratings),
                "ratingsDistribution": distribution,
            }
        return out

    def add_customer(self, key: str | None = None, resource_id: str | None = None) -> dict[str, Any]:
        customer = self._base(key, resource_id)
        customer.update(email=f"{customer['id']}@example.test", addresses=[], isEmailVerified=False)
        self.customers[customer["id"]] = customer
        return customer

    # --- types ------------------------------------------------------------------------------------

    def create_type(self, draft: Any) -> dict[str, Any]:
        _object(draft, "", ("key", "name", "description", "resourceTypeIds", "fieldDefinitions"))
        key = _string(_required(draft, "key", ""), "key")
        name = _localized(_required(draft, "name", ""), "name")
        if draft.get("description") is not None:
            _localized(draft["description"], "description")
        resource_type_ids = _array(_required(draft, "resourceTypeIds", ""), "resourceTypeIds")
        for index, type_id in enumerate(resource_type_ids):
            if _string(type_id, f"resourceTypeIds[{index}]") not in RESOURCE_TYPE_IDS:
                raise invalid_json(f"resourceTypeIds[{index}]: unknown ResourceTypeId {type_id!r}.")
        definitions = _array(draft.get("fieldDefinitions") or [], "fieldDefinitions")
        names: set[str] = set()
        for index, definition in enumerate(definitions):
            field_name = _field_definition(definition, f"fieldDefinitions[{index}]")
            if field_name in names:
                raise duplicate_field("fieldDefinitions.name", field_name)
            names.add(field_name)
        if not _KEY_PATTERN.fullmatch(key):
            raise invalid_field("key", key)
        if self.find("types", "key", key) is not None:
            raise duplicate_field("key", key)
        resource = self._base(key)
        resource.update(name=name, resourceTypeIds=list(resource_type_ids), fieldDefinitions=copy.deepcopy(definitions))
        if draft.get("description") is not None:
            resource["description"] = draft["description"]
        self.types[resource["id"]] = resource
        return resource

    def update_type(self, custom_type: dict[str, Any], body: Any) -> dict[str, Any]:
        """`{version, actions}` on a Type; of its update actions only `addFieldDefinition` (a field
        whose name the Type has already is a DuplicateFieldDefinition, 400)."""
        _object(body, "", ("version", "actions"))
        version = _number(_required(body, "version", ""), "version")
        actions = _array(_required(body, "actions", ""), "actions")
        if version != custom_type["version"]:
            raise concurrent_modification(custom_type["id"], version, custom_type["version"])
        updated = copy.deepcopy(custom_type)
        for index, action in enumerate(actions):
            path = f"actions[{index}]"
            _object(action, path, ("action", "fieldDefinition"))
            if action.get("action") != "addFieldDefinition":
                raise invalid_json(f"{path}.action: unknown Type update action {action.get('action')!r}.")
            definition = _required(action, "fieldDefinition", path)
            name = _field_definition(definition, _path(path, "fieldDefinition"))
            if any(d["name"] == name for d in updated["fieldDefinitions"]):
                raise ApiError(
                    400, "DuplicateFieldDefinition", f"A field definition with name '{name}' already exists."
                )
            updated["fieldDefinitions"].append(copy.deepcopy(definition))
        if actions:
            updated["version"] += 1
            updated["lastModifiedAt"] = iso(self.clock())
        self.types[custom_type["id"]] = updated
        return updated

    # --- states -----------------------------------------------------------------------------------

    def create_state(self, draft: Any) -> dict[str, Any]:
        _object(draft, "", ("key", "type", "name", "description", "initial", "roles", "transitions"))
        key = _string(_required(draft, "key", ""), "key")
        state_type = _string(_required(draft, "type", ""), "type")
        if state_type not in STATE_TYPES:
            raise invalid_json(f"type: one of {', '.join(STATE_TYPES)} expected.")
        for name in ("name", "description"):
            if draft.get(name) is not None:
                _localized(draft[name], name)
        initial = True if draft.get("initial") is None else _boolean(draft["initial"], "initial")
        roles = _array(draft.get("roles") or [], "roles")
        for index, role in enumerate(roles):
            if _string(role, f"roles[{index}]") not in STATE_ROLES:
                raise invalid_json(f"roles[{index}]: one of {', '.join(STATE_ROLES)} expected.")
        transitions = None
        if draft.get("transitions") is not None:
            identifiers = [
                _identifier(item, f"transitions[{index}]", ("state",))
                for index, item in enumerate(_array(draft["transitions"], "transitions"))
            ]
            transitions = [{"typeId": "state", "id": self._reference(identifier)["id"]} for identifier in identifiers]
        if not _KEY_PATTERN.fullmatch(key):
            raise invalid_field("key", key)
        if self.find("states", "key", key) is not None:
            raise duplicate_field("key", key)
        resource = self._base(key)
        resource.update(type=state_type, roles=list(roles), builtIn=False, initial=initial)
        for name in ("name", "description"):
            if draft.get(name) is not None:
                resource[name] = draft[name]
        if transitions is not None:
            resource["transitions"] = transitions
        self.states[resource["id"]] = resource
        return resource

    def _review_state(self, identifier: tuple[str, str, str]) -> dict[str, Any]:
        state = self._reference(identifier)
        if state["type"] != "ReviewState":
            raise invalid_operation(f"State '{state['id']}' is of type {state['type']}, not ReviewState.")
        return state

    # --- custom fields ------------------------------------------------------------------------------

    def _custom(self, type_identifier: tuple[str, str, str], fields: Mapping[str, Any]) -> dict[str, Any]:
        custom_type = self._reference(type_identifier)
        if "review" not in custom_type["resourceTypeIds"]:
            raise referenced_not_found("type", type_identifier[1], type_identifier[2])
        definitions = {d["name"]: d for d in custom_type["fieldDefinitions"]}
        for name, value in fields.items():
            if value is not None:
                _check_field_value(custom_type, definitions, name, value)
        kept = {name: copy.deepcopy(value) for name, value in fields.items() if value is not None}
        for name, definition in definitions.items():
            if definition["required"] and name not in kept:
                raise required_field(name)
        return {"type": {"typeId": "type", "id": custom_type["id"]}, "fields": kept}

    # --- reviews --------------------------------------------------------------------------------------

    def create_review(self, draft: Any) -> dict[str, Any]:
        _object(draft, "", REVIEW_DRAFT_FIELDS)
        for name in ("key", "uniquenessValue", "locale", "authorName", "title", "text"):
            if draft.get(name) is not None:
                _string(draft[name], name)
        if draft.get("rating") is not None:
            _number(draft["rating"], "rating")
        present = {name for name, value in draft.items() if value is not None}
        target = _identifier(draft["target"], "target", ("product", "channel")) if "target" in present else None
        state = _identifier(draft["state"], "state", ("state",)) if "state" in present else None
        customer = _identifier(draft["customer"], "customer", ("customer",)) if "customer" in present else None
        custom = _custom_draft(draft["custom"], "custom") if "custom" in present else None

        review = self._base(draft.get("key"))
        modifier = {"clientId": self.client_id, "isPlatformClient": False}
        review.update(lastModifiedBy=dict(modifier), createdBy=dict(modifier), includedInStatistics=True)
        for name in ("uniquenessValue", "locale", "authorName", "title", "text"):
            if draft.get(name) is not None:
                review[name] = draft[name]
        if draft.get("rating") is not None:
            review["rating"] = _rating(draft["rating"])
        if target is not None:
            review["target"] = {"typeId": target[0], "id": self._reference(target)["id"]}
        if state is not None:
            found = self._review_state(state)
            if not found["initial"]:
                raise invalid_operation(
                    f"State '{found['id']}' is not an initial state; a new review can only start in an initial state."
                )
            review["state"] = {"typeId": "state", "id": found["id"]}
            review["includedInStatistics"] = INCLUDED_ROLE in found["roles"]
        if customer is not None:
            review["customer"] = {"typeId": "customer", "id": self._reference(customer)["id"]}
        if custom is not None:
            review["custom"] = self._custom(*custom)
        if review.get("key") is not None and review["key"] in self._review_keys:
            raise duplicate_field("key", review["key"])
        uniqueness = review.get("uniquenessValue")
        if uniqueness is not None and uniqueness in self._review_uniqueness:
            raise duplicate_field("uniquenessValue", uniqueness)
        self._store_review(_ordered(review))
        return self.reviews[review["id"]]

    def _store_review(self, review: dict[str, Any], old: Mapping[str, Any] | None = None) -> None:
        if old is not None:
            self._unindex(old)
        self.reviews[review["id"]] = review
        if review.get("key") is not None:
            self._review_keys[review["key"]] = review["id"]
        if review.get("uniquenessValue") is not None:
            self._review_uniqueness[review["uniquenessValue"]] = review["id"]

    def _unindex(self, review: Mapping[str, Any]) -> None:
        if review.get("key") is not None:
            self._review_keys.pop(review["key"], None)
        if review.get("uniquenessValue") is not None:
            self._review_uniqueness.pop(review["uniquenessValue"], None)

    def update_review(self, review: dict[str, Any], body: Any) -> dict[str, Any]:
        """`{version, actions}`: shape first (400), then the version (409), then every action on a copy."""
        _object(body, "", ("version", "actions"))
        version = _number(_required(body, "version", ""), "version")
        actions = _array(_required(body, "actions", ""), "actions")
        for index, action in enumerate(actions):
            _check_action_shape(action, f"actions[{index}]")
        if version != review["version"]:
            raise concurrent_modification(review["id"], version, review["version"])
        if not actions:
            return review
        updated = copy.deepcopy(review)
        for action in actions:
            self._apply(updated, action)
        updated["version"] += 1
        updated["lastModifiedAt"] = iso(self.clock())
        updated["lastModifiedBy"] = {"clientId": self.client_id, "isPlatformClient": False}
        self._store_review(_ordered(updated), old=review)
        return self.reviews[review["id"]]

    def delete_review(self, review: dict[str, Any], version: int) -> dict[str, Any]:
        if version != review["version"]:
            raise concurrent_modification(review["id"], version, review["version"])
        self._unindex(review)
        return self.reviews.pop(review["id"])

    def _apply(self, review: dict[str, Any], action: Mapping[str, Any]) -> None:
        name = action["action"]
        if name in _SIMPLE_ACTIONS:
            field = _SIMPLE_ACTIONS[name]
            value = action.get(field)
            if name == "setKey" and value is not None and self._review_keys.get(value, review["id"]) != review["id"]:
                raise duplicate_field("key", value)
            _set(review, field, _rating(value) if name == "setRating" and value is not None else value)
        elif name == "setCustomer":
            customer = action.get("customer")
            _set(
                review,
                "customer",
                None
                if customer is None
                else {
                    "typeId": "customer",
                    "id": self._reference(_identifier(customer, "customer", ("customer",)))["id"],
                },
            )
        elif name == "setTarget":
            target = _identifier(action["target"], "target", ("product", "channel"))
            review["target"] = {"typeId": target[0], "id": self._reference(target)["id"]}
        elif name == "transitionState":
            self._transition(review, _identifier(action["state"], "state", ("state",)), bool(action.get("force")))
        elif name == "setCustomType":
            if action.get("type") is None:
                review.pop("custom", None)
            else:
                review["custom"] = self._custom(
                    *_custom_draft({"type": action["type"], "fields": action.get("fields") or {}}, "")
                )
        elif name == "setCustomField":
            self._set_custom_field(review, action["name"], action.get("value"))

    def _transition(self, review: dict[str, Any], identifier: tuple[str, str, str], force: bool) -> None:
        new = self._review_state(identifier)
        if not force:
            current = self.states.get((review.get("state") or {}).get("id", ""))
            if current is None and not new["initial"]:
                raise invalid_operation(
                    f"The review has no state yet, so it can only transition to an initial "
                    f"state; '{new['id']}' is not initial."
                )
            if (
                current is not None
                and "transitions" in current
                and {"typeId": "state", "id": new["id"]} not in current["transitions"]
            ):
                raise invalid_operation(f"There is no transition from state '{current['id']}' to state '{new['id']}'.")
        review["state"] = {"typeId": "state", "id": new["id"]}
        review["includedInStatistics"] = INCLUDED_ROLE in new["roles"]

    def _set_custom_field(self, review: dict[str, Any], name: str, value: Any) -> None:
        custom = review.get("custom")
        if custom is None:
            raise invalid_operation("This resource has no custom type set: use setCustomType first.")
        custom_type = self.types[custom["type"]["id"]]
        definitions = {d["name"]: d for d in custom_type["fieldDefinitions"]}
        if name not in definitions:
            raise invalid_field(name, value, f"The field '{name}' is not defined in type '{custom_type['key']}'.")
        if value is None:
            if name not in custom["fields"]:
                raise invalid_operation(f"The field '{name}' does not exist, so it cannot be removed.")
            if definitions[name]["required"]:
                raise required_field(name)
            del custom["fields"][name]
            return
        _check_field_value(custom_type, definitions, name, value)
        custom["fields"][name] = copy.deepcopy(value)


# --- review helpers -------------------------------------------------------------------------------

_SIMPLE_ACTIONS = {
    "setKey": "key",
    "setAuthorName": "authorName",
    "setRating": "rating",
    "setText": "text",
    "setTitle": "title",
    "setLocale": "locale",
}
#: action → (its fields, the required ones)
_ACTION_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{name: ((field,), ()) for name, field in _SIMPLE_ACTIONS.items()},
    "setCustomer": (("customer",), ()),
    "setTarget": (("target",), ("target",)),
    "transitionState": (("state", "force"), ("state",)),
    "setCustomType": (("type", "fields"), ()),
    "setCustomField": (("name", "value"), ("name",)),
}


def _check_action_shape(action: Any, path: str) -> None:
    _object(action, path)
    name = _string(_required(action, "action", path), _path(path, "action"))
    if name not in _ACTION_FIELDS:
        raise invalid_json(
            f"{_path(path, 'action')}: unknown ReviewUpdateAction {name!r}; expected one of "
            f"{', '.join(sorted(_ACTION_FIELDS))}."
        )
    fields, required = _ACTION_FIELDS[name]
    _object(action, path, ("action", *fields))
    for field in required:
        _required(action, field, path)
    if name in _SIMPLE_ACTIONS and action.get(_SIMPLE_ACTIONS[name]) is not None:
        check = _number if name == "setRating" else _string
        check(action[_SIMPLE_ACTIONS[name]], _path(path, _SIMPLE_ACTIONS[name]))
    elif name == "setCustomer" and action.get("customer") is not None:
        _identifier(action["customer"], _path(path, "customer"), ("customer",))
    elif name == "setTarget":
        _identifier(action["target"], _path(path, "target"), ("product", "channel"))
    elif name == "transitionState":
        _identifier(action["state"], _path(path, "state"), ("state",))
        if action.get("force") is not None:
            _boolean(action["force"], _path(path, "force"))
    elif name == "setCustomType":
        if action.get("type") is not None:
            _identifier(action["type"], _path(path, "type"), ("type",))
        if action.get("fields") is not None:
            _object(action["fields"], _path(path, "fields"))
    elif name == "setCustomField":
        _string(action["name"], _path(path, "name"))


def _custom_draft(value: Any, path: str) -> tuple[tuple[str, str, str], dict[str, Any]]:
    _object(value, path, ("type", "fields"))
    identifier = _identifier(_required(value, "type", path), _path(path, "type"), ("type",))
    fields = _object(value.get("fields") or {}, _path(path, "fields"))
    return identifier, fields


def _rating(value: Any) -> int:
    if isinstance(value, float) or not RATING_MIN <= value <= RATING_MAX:
        raise invalid_field("rating", value)
    return value


def _set(resource: dict[str, Any], field: str, value: Any) -> None:
    if value is None:
        resource.pop(field, None)
    else:
        resource[field] = value


def _ordered(review: Mapping[str, Any]) -> dict[str, Any]:
    return {name: review[name] for name in REVIEW_ORDER if name in review}


def _field_type(value: Any, path: str, *, allow_set: bool) -> None:
    _object(value, path, ("name", "elementType"))
    name = _string(_required(value, "name", path), _path(path, "name"))
    allowed = FIELD_TYPES if allow_set else tuple(t for t in FIELD_TYPES if t != "Set")
    if name not in allowed:
        raise invalid_json(
            f"{_path(path, 'name')}: one of {', '.join(allowed)} expected (the emulator models only these field types)."
        )
    if name == "Set":
        _field_type(_required(value, "elementType", path), _path(path, "elementType"), allow_set=False)


def _value_fits(field_type: Mapping[str, Any], value: Any) -> bool:
    name = field_type["name"]
    if name == "String":
        return isinstance(value, str)
    if name == "Boolean":
        return isinstance(value, bool)
    if name == "Number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "DateTime":
        return parse_datetime(value) is not None
    if name == "LocalizedString":
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if name == "Set":
        return isinstance(value, list) and all(_value_fits(field_type["elementType"], v) for v in value)
    return False


def _field_definition(definition: Any, path: str) -> str:
    """Check one FieldDefinition draft; return its name."""
    _object(definition, path, ("name", "label", "required", "type", "inputHint"))
    field_name = _string(_required(definition, "name", path), _path(path, "name"))
    _localized(_required(definition, "label", path), _path(path, "label"))
    _boolean(_required(definition, "required", path), _path(path, "required"))
    _field_type(_required(definition, "type", path), _path(path, "type"), allow_set=True)
    if definition.get("inputHint") not in (None, "SingleLine", "MultiLine"):
        raise invalid_json(f"{path}.inputHint: 'SingleLine' or 'MultiLine' expected.")
    if not _FIELD_NAME_PATTERN.fullmatch(field_name):
        raise invalid_field("name", field_name)
    return field_name


def _check_field_value(custom_type: Mapping[str, Any], definitions: Mapping[str, Any], name: str, value: Any) -> None:
    if name not in definitions:
        raise invalid_field(name, value, f"The field '{name}' is not defined in type '{custom_type['key']}'.")
    if not _value_fits(definitions[name]["type"], value):
        raise invalid_field(
            name,
            value,
            f"The value '{json.dumps(value)}' is not valid for field '{name}' "
            f"(a {definitions[name]['type']['name']} is expected).",
        )


def expand_review(project: Project, review: Mapping[str, Any], expand: list[str]) -> dict[str, Any]:
    """`expand=state` etc.: the referenced object inlined as `obj` (unknown paths are ignored)."""
    out = copy.deepcopy(dict(review))
    for name in expand:
        reference = out.get(name.strip())
        kind = {"product": "products", "state": "states", "customer": "customers"}.get(
            (reference or {}).get("typeId", "")
        )
        if isinstance(reference, dict) and kind:
            found = project.find(kind, "id", reference["id"])
            if found is not None:
                reference["obj"] = project.product_json(found) if kind == "products" else copy.deepcopy(found)
    return out


# --- query: where, sort, limit, offset, withTotal ------------------------------------------------

_REF_FIELDS = {"id": "string", "typeId": "string"}
_COMMON_FIELDS = {
    "id": "string",
    "key": "string",
    "version": "number",
    "createdAt": "datetime",
    "lastModifiedAt": "datetime",
}
QUERY_FIELDS: dict[str, dict[str, Any]] = {
    "reviews": {
        **_COMMON_FIELDS,
        "uniquenessValue": "string",
        "locale": "string",
        "authorName": "string",
        "title": "string",
        "text": "string",
        "rating": "number",
        "includedInStatistics": "boolean",
        "target": _REF_FIELDS,
        "state": _REF_FIELDS,
        "customer": _REF_FIELDS,
    },
    "products": dict(_COMMON_FIELDS),
    "types": dict(_COMMON_FIELDS),
    "states": {**_COMMON_FIELDS, "type": "string", "initial": "boolean", "builtIn": "boolean"},
}
SORT_FIELDS = ("id", "key", "createdAt", "lastModifiedAt", "version")
_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)|(?P<var>:[A-Za-z_]\w*)
                        |(?P<op><>|!=|>=|<=|=|<|>)|(?P<punct>[(),])|(?P<ident>[A-Za-z_]\w*))""",
    re.X,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "defined", "true", "false"}
_MISSING = object()
Predicate = Callable[[Mapping[str, Any]], bool]


def _malformed(parameter: str, detail: str) -> ApiError:
    return invalid_input(f"Malformed parameter: {parameter}: {detail}")


class _WhereParser:
    """Recursive descent over: or ← and ('or' and)*; and ← unary ('and' unary)*;
    unary ← 'not' '(' or ')' | '(' or ')' | field '(' or ')' | field op value | field [not] in (values) | :var
          | field is [not] defined."""

    def __init__(self, text: str, fields: Mapping[str, Any], variables: Mapping[str, list[str]]):
        self.text, self.fields, self.variables = text, fields, variables
        self.tokens: list[tuple[str, Any, int]] = []
        position = 0
        while position < len(text):
            if not text[position:].strip():
                break
            match = _TOKEN.match(text, position)
            if match is None:
                raise self.error(f"unexpected character {text[position:].strip()[:1]!r}", position)
            kind = match.lastgroup
            raw = match.group(kind)
            value: Any = raw
            if kind == "string":
                value = json.loads(raw)
            elif kind == "number":
                value = float(raw) if "." in raw else int(raw)
            elif kind == "ident" and raw.lower() in _KEYWORDS:
                kind, value = "keyword", raw.lower()
            self.tokens.append((kind, value, match.start(match.lastgroup)))
            position = match.end()
        self.index = 0

    def error(self, detail: str, position: int | None = None) -> ApiError:
        if position is None:
            position = self.tokens[self.index][2] if self.index < len(self.tokens) else len(self.text)
        return _malformed(
            "where",
            f"Syntax error while parsing 'where': {detail} (column {position + 1} of "
            f"{self.text!r}). The emulator supports =, !=, <>, <, <=, >, >=, in, not in, "
            'is [not] defined, and, or, not(...) and nested references like target(id = "…").',
        )

    def peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str, value: Any = None) -> Any:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise self.error(f"expected {value or kind}")
        self.index += 1
        return token[1]

    def accept(self, kind: str, value: Any = None) -> bool:
        token = self.peek()
        if token is not None and token[0] == kind and (value is None or token[1] == value):
            self.index += 1
            return True
        return False

    def parse(self) -> Predicate:
        if not self.tokens:
            raise self.error("empty predicate")
        predicate = self.parse_or(self.fields)
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")
        return predicate

    def parse_or(self, fields: Mapping[str, Any]) -> Predicate:
        parts = [self.parse_and(fields)]
        while self.accept("keyword", "or"):
            parts.append(self.parse_and(fields))
        return parts[0] if len(parts) == 1 else (lambda doc: any(p(doc) for p in parts))

    def parse_and(self, fields: Mapping[str, Any]) -> Predicate:
        parts = [self.parse_unary(fields)]
        while self.accept("keyword", "and"):
            parts.append(self.parse_unary(fields))
        return parts[0] if len(parts) == 1 else (lambda doc: all(p(doc) for p in parts))

    def parse_unary(self, fields: Mapping[str, Any]) -> Predicate:
        if self.accept("keyword", "not"):
            self.take("punct", "(")
            inner = self.parse_or(fields)
            self.take("punct", ")")
            return lambda doc: not inner(doc)
        if self.accept("punct", "("):
            inner = self.parse_or(fields)
            self.take("punct", ")")
            return inner
        name = self.take("ident")
        if name not in fields:
            raise _malformed(
                "where",
                f"unknown or unsupported field {name!r} in {self.text!r}; the emulator knows "
                f"{', '.join(sorted(fields))}.",
            )
        kind = fields[name]
        if isinstance(kind, dict):
            self.take("punct", "(")
            inner = self.parse_or(kind)
            self.take("punct", ")")
            return lambda doc: isinstance(doc.get(name), dict) and inner(doc[name])
        return self.parse_comparison(name, kind)

    def parse_comparison(self, name: str, kind: str) -> Predicate:
        def value_of(doc: Mapping[str, Any]) -> Any:
            value = doc.get(name, _MISSING)
            if value is None or value is _MISSING:
                return _MISSING
            return parse_datetime(value) if kind == "datetime" else value

        if self.accept("keyword", "is"):
            negate = self.accept("keyword", "not")
            self.take("keyword", "defined")
            return lambda doc: (value_of(doc) is _MISSING) == negate
        negate = self.accept("keyword", "not")
        if negate or self.accept("keyword", "in"):
            if negate:
                self.take("keyword", "in")
            values = self.parse_values(kind)
            return lambda doc: value_of(doc) is not _MISSING and (value_of(doc) in values) != negate
        op = self.take("op")
        literal = self.parse_values(kind, single=True)[0]
        compare = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<>": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }[op]

        def predicate(doc: Mapping[str, Any]) -> bool:
            value = value_of(doc)
            return value is not _MISSING and type(value) is type(literal) and compare(value, literal)

        if kind in ("number",):
            return lambda doc: (
                value_of(doc) is not _MISSING
                and not isinstance(value_of(doc), bool)
                and compare(value_of(doc), literal)
            )
        return predicate

    def parse_values(self, kind: str, *, single: bool = False) -> list[Any]:
        token = self.peek()
        if token is not None and token[0] == "var":
            self.index += 1
            raw = self.variables.get(f"var.{token[1][1:]}")
            if not raw:
                raise _malformed("where", f"input variable {token[1]} has no value (pass var.{token[1][1:]}=…).")
            if single and len(raw) > 1:
                raise _malformed("where", f"input variable {token[1]} has several values where one is expected.")
            return [self.coerce(value, kind, from_variable=True) for value in raw]
        if single:
            return [self.coerce(self.literal(), kind)]
        self.take("punct", "(")
        values = [self.coerce(self.literal(), kind)]
        while self.accept("punct", ","):
            values.append(self.coerce(self.literal(), kind))
        self.take("punct", ")")
        return values

    def literal(self) -> Any:
        token = self.peek()
        if token is None or (token[0] not in ("string", "number") and token[1] not in ("true", "false")):
            raise self.error("expected a value (a double-quoted string, a number, true or false)")
        self.index += 1
        return {"true": True, "false": False}.get(token[1], token[1]) if token[0] == "keyword" else token[1]

    def coerce(self, value: Any, kind: str, *, from_variable: bool = False) -> Any:
        if kind in ("string", "datetime") and isinstance(value, str):
            if kind == "string":
                return value
            moment = parse_datetime(value)
            if moment is not None:
                return moment
        elif kind == "number":
            if from_variable:
                try:
                    return float(value) if "." in value else int(value)
                except ValueError:
                    pass
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
        elif kind == "boolean":
            if from_variable and value in ("true", "false"):
                return value == "true"
            if isinstance(value, bool):
                return value
        raise _malformed("where", f"{json.dumps(value)} is not a valid {kind} value in {self.text!r}.")


def _int_param(params: Mapping[str, list[str]], name: str, default: int, maximum: int) -> int:
    raw = (params.get(name) or [None])[-1]
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or int(raw) > maximum:
        raise invalid_input(f"Malformed parameter: {name}: '{raw}' is not an integer between 0 and {maximum}.")
    return int(raw)


def query(
    project: Project,
    kind: str,
    params: Mapping[str, list[str]],
    render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A PagedQueryResponse `{limit, offset, count, total?, results}` over one resource kind."""
    limit = _int_param(params, "limit", 20, QUERY_LIMIT_MAX)
    offset = _int_param(params, "offset", 0, QUERY_OFFSET_MAX)
    with_total_raw = (params.get("withTotal") or ["true"])[-1]
    if with_total_raw not in ("true", "false"):
        raise invalid_input(f"Malformed parameter: withTotal: '{with_total_raw}' is not a boolean.")
    wheres = params.get("where") or []
    predicates = [_WhereParser(text, QUERY_FIELDS[kind], params).parse() for text in wheres]
    items = sorted(project.collection(kind).values(), key=lambda item: item["id"])
    for sort in reversed(params.get("sort") or []):
        match = re.fullmatch(r"\s*(\w+)\s+(asc|desc)\s*", sort, re.I)
        if match is None or match.group(1) not in SORT_FIELDS:
            raise invalid_input(
                f"Malformed parameter: sort: '{sort}' is not '<field> asc|desc' with a field of "
                f"{', '.join(SORT_FIELDS)}."
            )
        field, descending = match.group(1), match.group(2).lower() == "desc"
        present = [item for item in items if item.get(field) is not None]
        absent = [item for item in items if item.get(field) is None]
        present.sort(key=lambda item: item[field], reverse=descending)
        items = present + absent if not descending else absent + present
    matched = [item for item in items if all(predicate(item) for predicate in predicates)]
    page = matched[offset : offset + limit]
    response: dict[str, Any] = {"limit": limit, "offset": offset, "count": len(page)}
    if with_total_raw == "true":
        response["total"] = min(len(matched), TOTAL_CAP) if wheres else len(matched)
    response["results"] = [render(item) if render else copy.deepcopy(item) for item in page]
    return response
