"""Reading the admin page as a browser would: its CSRF token, its forms, its `data-testid` elements."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from sqlalchemy import func, select

from app.core.db import transaction
from app.core.models import InboxEvent
from tests.builders import trustoo_body, trustoo_headers
from tests.e2e.conftest import ADMIN_TOKEN

__all__ = ["csrf_token", "db_counts", "deliver", "only_event", "post_form", "sign_in", "texts"]

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page: str) -> str:
    """The CSRF token of a page's forms, as a browser would send it back."""
    match = _CSRF.search(page)
    assert match, "the page has no form with a csrf_token"
    return html.unescape(match.group(1))


def sign_in(client, token: str = ADMIN_TOKEN):
    """Fill in and send the sign-in form; the answer (a redirect when the token is right)."""
    form = client.get("/admin/login").get_data(as_text=True)
    return client.post("/admin/login", data={"token": token, "csrf_token": csrf_token(form)})


def post_form(client, page_url: str, action: str, data: dict | None = None):
    """Send a form from `page_url` to `action`, with the CSRF token that page carries."""
    page = client.get(page_url)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(action, data=(data or {}) | {"csrf_token": csrf_token(page.get_data(as_text=True))})


_VOID = ("input", "meta", "br", "img", "link", "hr")


class _Collector(HTMLParser):
    def __init__(self, tag: str | None, attrs: dict[str, str]):
        super().__init__(convert_charrefs=True)
        self._tag, self._attrs = tag, attrs
        self._open: list[list] = []  # [depth, text parts] of the matching elements still open
        self._depth = 0
        self.found: list[str] = []

    def _matches(self, tag: str, values: dict) -> bool:
        if self._tag and tag != self._tag:
            return False
        for name, wanted in self._attrs.items():
            if name == "class":
                if not set(wanted.split()) <= set((values.get("class") or "").split()):
                    return False
            elif values.get(name) != wanted:
                return False
        return True

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag not in _VOID:
            self._depth += 1
        if self._matches(tag, values):
            if tag in _VOID:
                self.found.append(values.get("value") or "")
            else:
                self._open.append([self._depth, []])

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if self._open and self._open[-1][0] == self._depth:
            _, parts = self._open.pop()
            self.found.append(" ".join("".join(parts).split()))
        self._depth -= 1

    def handle_data(self, data):
        for _, parts in self._open:
            parts.append(data)


def texts(page: str, tag: str | None = None, **attrs: str) -> list[str]:
    """The text (or an input's value) of every element of this tag with these attributes, in order:
    `texts(html, "td", data_count="trustoo/x/done")`, `texts(html, id="queue-depth")`, `cls="flash error"`."""
    wanted = {("class" if name == "cls" else name.replace("_", "-")): value for name, value in attrs.items()}
    collector = _Collector(tag, wanted)
    collector.feed(page)
    return collector.found


def deliver(client, *items) -> None:
    body = trustoo_body(*items)
    assert client.post("/webhooks/trustoo/review-created", data=body, headers=trustoo_headers(body)).status_code == 200


def db_counts(engine) -> dict[str, int]:
    with transaction(engine) as session:
        return dict(session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all())


def only_event(engine) -> InboxEvent:
    with transaction(engine) as session:
        return session.execute(select(InboxEvent)).scalar_one()
