"""Reading the admin page as a browser would: its CSRF token, its forms, its `data-testid` elements."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from tests.e2e.conftest import ADMIN_TOKEN

__all__ = ["csrf_token", "post_form", "sign_in", "texts"]

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


class _Collector(HTMLParser):
    def __init__(self, testid: str, attrs: dict[str, str]):
        super().__init__(convert_charrefs=True)
        self._testid, self._attrs = testid, attrs
        self._open: list[list] = []  # [depth, text parts] of the matching elements still open
        self._depth = 0
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag not in ("input", "meta", "br", "img", "link", "hr"):
            self._depth += 1
        if values.get("data-testid") == self._testid and all(values.get(k) == v for k, v in self._attrs.items()):
            if tag in ("input", "meta", "br", "img", "link", "hr"):
                self.found.append(values.get("value") or "")
            else:
                self._open.append([self._depth, []])

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == self._depth:
            _, parts = self._open.pop()
            self.found.append(" ".join("".join(parts).split()))
        self._depth -= 1

    def handle_data(self, data):
        for _, parts in self._open:
            parts.append(data)


def texts(page: str, testid: str, **attrs: str) -> list[str]:
    """The text of every element with this data-testid (and these data-* attributes: data_source=...)."""
    collector = _Collector(testid, {name.replace("_", "-"): value for name, value in attrs.items()})
    collector.feed(page)
    return collector.found
