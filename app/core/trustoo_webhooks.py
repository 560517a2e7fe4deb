"""A shop's Trustoo webhook registrations, kept pointing at this service.

A registration is ours when its URL's path is one of our topic routes (/webhooks/trustoo/<topic>),
whatever host it names: a deployment that moved keeps its registrations and moves them, in place,
instead of leaving a dead subscription that Trustoo retries for hours. Registrations of other apps
are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.trustoo import TOPIC_ROUTES

__all__ = ["Registration", "plan", "route_url", "unregistered"]

_ROUTE_PREFIX = "/webhooks/trustoo/"


@dataclass(frozen=True)
class Registration:
    action: str  # found | moved | registered | deleted
    topic: str
    url: str  # where it points once the action is done (for deleted: where it pointed)
    webhook_id: str | None = None
    was: str | None = None  # moved: the old URL


def route_url(base_url: str, topic: str) -> str:
    return f"{base_url.rstrip('/')}{_ROUTE_PREFIX}{TOPIC_ROUTES[topic]}"


def plan(existing: Iterable[dict], base_url: str) -> list[Registration]:
    """What makes each topic delivered to `base_url` exactly once: keep a registration already there,
    else move one of ours, else register; our other registrations of that topic are deleted (each
    would deliver every review once more, or to an address that is gone)."""
    wanted_urls = {route_url(base_url, topic) for topic in TOPIC_ROUTES}
    ours = [hook for hook in existing if "id" in hook and (hook.get("url") in wanted_urls or _is_our_route(hook))]
    steps = []
    for topic in TOPIC_ROUTES:
        wanted = route_url(base_url, topic)
        hooks = sorted((hook for hook in ours if hook.get("topic") == topic), key=lambda h: h.get("url") != wanted)
        if not hooks:
            steps.append(Registration("registered", topic, wanted))
            continue
        kept, *extra = hooks
        if kept.get("url") == wanted:
            steps.append(Registration("found", topic, wanted, str(kept["id"])))
        else:
            steps.append(Registration("moved", topic, wanted, str(kept["id"]), was=str(kept.get("url"))))
        steps += [Registration("deleted", topic, str(hook.get("url")), str(hook["id"])) for hook in extra]
    return steps


def unregistered(existing: Iterable[dict], base_url: str) -> list[str]:
    """The topics not delivered to `base_url`."""
    there = {(hook.get("topic"), hook.get("url")) for hook in existing}
    return [topic for topic in TOPIC_ROUTES if (topic, route_url(base_url, topic)) not in there]


def _is_our_route(hook: dict) -> bool:
    path = urlsplit(str(hook.get("url") or "")).path
    return path.startswith(_ROUTE_PREFIX) and path[len(_ROUTE_PREFIX) :] in TOPIC_ROUTES.values()
