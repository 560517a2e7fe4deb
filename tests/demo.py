"""`make demo`: the commercetools, Trustoo and Wix emulators, `reviewbridge serve` against them with
a fresh SQLite database, and a shop's activity: signed Trustoo webhooks (sent by hand, then by the
Trustoo emulator as reviews are written, edited, hidden, re-published and deleted there), Wix reviews
and fulfilled orders, faults injected into commercetools (503s, a 429 with Retry-After, a reply lost
after the write, and one refused review that becomes a dead letter), and one product left unmapped.
It prints what landed in commercetools, then the admin page's URL and token, and keeps serving until
Ctrl-C so that the page can be explored. Everything stays on loopback.

Every review the demo delivers is one its emulators hold: the webhooks sent by hand carry reviews
written in the Trustoo emulator first, exactly as it renders them. So a resync or a reconcile started
from the admin page agrees with what the demo showed: it deletes nothing, and reports only what the
page asks a person to do (the dead letter to replay, the review waiting for its product).

    .venv/bin/python -m tests.demo [--exit]      # --exit: stop at the end instead of serving on
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.builders import trustoo_body, trustoo_headers
from tests.fakes.commercetools import CommercetoolsEmulator
from tests.fakes.serving import serve_wsgi
from tests.fakes.trustoo import TrustooEmulator
from tests.fakes.wix import WixEmulator

PUBLIC_TOKEN = "demo-public-token"
PRIVATE_TOKEN = "demo-private-token"
PRODUCT = "7982301249581"
UNMAPPED = "8000000000999"  # a Trustoo product no mapping names: its review waits on the admin page
REVIEWBRIDGE = str(Path(sys.executable).parent / "reviewbridge")


@dataclass
class Demo:
    """The demo once its story has played: ReviewBridge serving at `base`, and its emulators."""

    env: dict[str, str]  # the variables `reviewbridge` runs with, for more commands against the demo
    base: str
    commercetools: CommercetoolsEmulator
    trustoo: TrustooEmulator
    wix: WixEmulator
    serve: subprocess.Popen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exit", action="store_true", help="stop at the end instead of serving until Ctrl-C")
    args = parser.parse_args()
    with running() as demo:
        _say("the admin page")
        print(f"  open      {demo.base}/admin")
        print(f"  token     {demo.env['ADMIN_TOKEN']}")
        print(
            f"  to try    Dead letters: replay Katherine's review (the 400 was a one-off; the worker's poll, off\n"
            f"            here, would also bring it in from Trustoo).\n"
            f"            Waiting for a product: Hedy's review waits for Trustoo product {UNMAPPED}; map it to "
            f"mug-green.\n"
            f"            Resync & reconcile: a reconcile finds those two and nothing else; a resync deletes "
            f"nothing.\n"
            f"            Connections: check each platform."
        )
        if not args.exit:
            _say("serving until Ctrl-C")
            with contextlib.suppress(KeyboardInterrupt):
                demo.serve.wait()
    return 0


@contextlib.contextmanager
def running(database_url: str | None = None) -> Iterator[Demo]:
    """The emulators and `reviewbridge serve` (on `database_url`, else a fresh SQLite file), with the
    story played through; everything stops on leaving."""
    emulator = CommercetoolsEmulator(
        project_key="demo", client_id="demo-client", client_secret="demo-secret-0123456789"
    )
    emulator.add_product(key=PRODUCT)
    emulator.add_product(key="mug-green")
    trustoo = TrustooEmulator(shops={PUBLIC_TOKEN: PRIVATE_TOKEN}, retry_delays_s=(0, 1, 1, 1, 1, 1, 1, 1, 1, 1))
    wix = WixEmulator()
    site = wix.add_instance()
    with (
        serve_wsgi(emulator) as ct_url,
        serve_wsgi(trustoo) as trustoo_url,
        serve_wsgi(wix) as wix_url,
        tempfile.TemporaryDirectory() as scratch,
    ):
        port = _free_port()
        env = os.environ | {
            "DATABASE_URL": database_url or f"sqlite:///{scratch}/demo.db",
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "TRUSTOO_PUBLIC_TOKEN": PUBLIC_TOKEN,
            "TRUSTOO_PRIVATE_TOKEN": PRIVATE_TOKEN,
            "CTP_PROJECT_KEY": "demo",
            "CTP_CLIENT_ID": "demo-client",
            "CTP_CLIENT_SECRET": "demo-secret-0123456789",
            "CTP_API_URL": ct_url,
            "CTP_AUTH_URL": ct_url,
            "TRUSTOO_API_URL": trustoo_url,
            "WIX_APP_ID": wix.app_id,
            "WIX_APP_SECRET": wix.app_secret,
            "WIX_API_URL": wix_url,
            "WIX_PUBLIC_KEY": wix.public_key_pem,
            "ROUTES": "trustoo:commercetools,wix:commercetools,wix:trustoo",
            "ADMIN_TOKEN": secrets.token_urlsafe(32),
            "SECRET_KEY": secrets.token_urlsafe(32),
            # Quick retries, so the injected faults heal within the demo.
            "RETRY_BASE_S": "0.2",
            "RETRY_CAP_S": "3",
            # No poll: it would read Katherine's review from Trustoo and heal her dead letter behind the
            # page's back; here it waits for a person, as the page says.
            "POLL_INTERVAL": "0",
        }
        _say(f"emulators: commercetools {ct_url}, Trustoo {trustoo_url}, Wix {wix_url}")
        _run([REVIEWBRIDGE, "db", "upgrade"], env)
        _say("reviewbridge setup commercetools")
        print(_run([REVIEWBRIDGE, "setup", "commercetools"], env), end="")
        serve = subprocess.Popen([REVIEWBRIDGE, "serve", "--host", "127.0.0.1"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base)
            _say(
                "faults injected into commercetools: two 503s, a 429 with Retry-After: 1, a reply lost after "
                "its write was applied"
            )
            emulator.inject(503, times=2, method="POST")
            emulator.inject(429, retry_after=1, method="POST")
            emulator.inject(502, after_apply=True, method="POST", path_contains="/reviews")
            _say(f"ReviewBridge serving on {base}; reviews written in Trustoo, their webhooks sent by hand")
            _story(base, trustoo)
            wait_settled(env)
            _say("commercetools refuses the next review (HTTP 400): a dead letter, to replay from the admin page")
            emulator.inject(
                400,
                method="POST",
                path_contains="/reviews",
                body={
                    "statusCode": 400,
                    "message": "Demo: the review was refused once",
                    "errors": [{"code": "InvalidInput", "message": "Demo: refused once"}],
                },
            )
            katherine = trustoo.add_review(
                PUBLIC_TOKEN, id=1004, product_id=PRODUCT, author="Katherine Johnson", title="Precise", rating=5
            )
            _post(base, "review-created", _item(trustoo, katherine), "Katherine's review, refused by commercetools")
            wait_settled(env)
            _say("reviewbridge trustoo webhooks register (the Trustoo emulator now calls ReviewBridge itself)")
            print(_run([REVIEWBRIDGE, "trustoo", "webhooks", "register", "--base-url", base], env), end="")
            _trustoo_story(trustoo, env)
            _say("Wix: a review approved after moderation, and fulfilled orders delivered three times each")
            wix_product = _wix_story(wix, site, emulator, base, env)
            _say("reviewbridge wix review-requests list")
            print(_run([REVIEWBRIDGE, "wix", "review-requests", "list"], env), end="")
            _say("reviewbridge products import (mappings for the reviews waiting for a product)")
            mapping = Path(scratch) / "products.csv"
            mapping.write_text(
                "source,account,source_product_id,product_key,target\n"
                f"trustoo,{PUBLIC_TOKEN},8000000000001,mug-green,commercetools\n"
                f"wix,{site},{wix_product},{PRODUCT},trustoo\n"
            )
            print(_run([REVIEWBRIDGE, "products", "import", str(mapping)], env), end="")
            wait_settled(env)
            copies = [r for r in trustoo.reviews(PUBLIC_TOKEN) if r.get("author") == "Ada"]
            print(
                f"  Ada's Wix review, copied into Trustoo by the route wix:trustoo: {len(copies)} copy "
                f"(its echo webhook recorded as such, not sent on)"
            )
            _say("reviewbridge status")
            print(_run([REVIEWBRIDGE, "status"], env))
            _say("what landed in commercetools")
            _print_reviews(emulator)
            yield Demo(env, base, emulator, trustoo, wix, serve)
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=15)


def _story(base: str, trustoo: TrustooEmulator) -> None:
    """Reviews written, edited and hidden in the Trustoo emulator, each followed by the webhook Trustoo
    would send about it, signed and sent by hand (ReviewBridge registers its own webhooks later)."""

    def write(review_id: int, product_id: str, author: str, title: str, rating: int) -> Callable[[], dict]:
        return lambda: trustoo.add_review(
            PUBLIC_TOKEN, id=review_id, product_id=product_id, author=author, title=title, rating=rating
        )

    def stored(review_id: int) -> Callable[[], dict]:
        return lambda: next(r for r in trustoo.reviews(PUBLIC_TOKEN) if r["id"] == review_id)

    steps = [
        ("review-created", write(1001, PRODUCT, "Ada Lovelace", "Lovely mug", 5), "Ada's 5-star review"),
        ("review-created", stored(1001), "the same delivery again (Trustoo retries): no second review"),
        ("review-created", write(1002, PRODUCT, "Grace Hopper", "Chipped on arrival", 2), "Grace's 2-star review"),
        (
            "review-created",
            write(1003, "8000000000001", "Alan Turing", "Solid", 4),
            "Alan's review of a product commercetools does not know yet",
        ),
        (
            "review-created",
            write(1005, UNMAPPED, "Hedy Lamarr", "Inventive", 5),
            f"Hedy's review of product {UNMAPPED}, which stays unmapped",
        ),
        (
            "review-updated",
            lambda: trustoo.update_review(PUBLIC_TOKEN, 1001, rating=4, content="Still lovely; the handle gets warm."),
            "Ada edits hers",
        ),
        (
            "review-deleted",
            lambda: trustoo.hide_review(PUBLIC_TOKEN, 1002),
            "Grace's review hidden (Trustoo says review/deleted)",
        ),
    ]
    for topic, act, what in steps:
        _post(base, topic, _item(trustoo, act()), what)
        time.sleep(1.05)  # Trustoo stamps deliveries in whole seconds; a second apart keeps their order


def _item(trustoo: TrustooEmulator, review: dict) -> dict:
    """A review as Trustoo's webhooks carry it: the stored review with the shop's identifiers."""
    return {"id": review["id"], **trustoo.shop_info(PUBLIC_TOKEN), **review}


def _trustoo_story(trustoo: TrustooEmulator, env: dict) -> None:
    linus = trustoo.add_review(
        PUBLIC_TOKEN, product_id=PRODUCT, rating=3, author="Linus Pauling", title="Fine", content="Does the job."
    )
    print(f"  written in Trustoo: review {linus['id']} by Linus (3 stars)")
    steps = [
        (lambda: trustoo.update_review(PUBLIC_TOKEN, linus["id"], rating=5, title="Grew on me"), "edited: 5 stars"),
        (lambda: trustoo.hide_review(PUBLIC_TOKEN, linus["id"]), "hidden (Trustoo says review/deleted)"),
        (lambda: trustoo.publish_review(PUBLIC_TOKEN, linus["id"]), "published again"),
    ]
    marie = trustoo.add_review(
        PUBLIC_TOKEN, product_id=PRODUCT, rating=1, author="Marie Curie", title="Glows", content="Not what I ordered."
    )
    print(f"  written in Trustoo: review {marie['id']} by Marie (1 star)")
    steps.append((lambda: trustoo.delete_review_in_admin(PUBLIC_TOKEN, marie["id"]), "Marie's deleted"))
    for action, what in steps:
        time.sleep(1.05)  # one second apart, as Trustoo stamps its deliveries
        action()
        print(f"  in Trustoo: {what}")
    trustoo.flush_deliveries(timeout_s=30)
    wait_settled(env)
    delivered = [d for d in trustoo.deliveries if d.ok]
    print(f"  Trustoo delivered {len(delivered)} webhook(s), every one acknowledged")


def _wix_story(wix: WixEmulator, site: str, ct: CommercetoolsEmulator, base: str, env: dict) -> str:
    """Returns the Wix product the review is about (its Trustoo copy waits for a mapping)."""
    review = wix.add_review(
        site, rating=4, title="Cosy", body="Soft and warm.", authorName="Ada", moderationStatus="IN_MODERATION"
    )
    ct.add_product(key=review["entityId"])
    bodies = [wix.review_webhook(site, review["id"], "created")]
    wix.moderate(site, review["id"], "APPROVED")
    bodies.append(wix.review_webhook(site, review["id"], "moderation_status_changed"))
    orders = [wix.make_order(site) for _ in range(3)]
    bodies += [
        wix.sign_webhook("wix.ecom.v1.order_fulfilled", site, wix.order_fulfilled_event(site, order))
        for order in orders
    ]
    deliveries = wix.deliver_many(f"{base}/webhooks/wix", bodies, duplicates=3, seed=1)
    print(
        f"  Wix delivered {len(deliveries)} webhooks (each three times, shuffled); "
        f"{sum(d.ok for d in deliveries)} acknowledged within 1.25 s"
    )
    wait_settled(env)
    print(f"  review requests Wix holds: {len(wix.review_request_creates)} for {len(orders)} orders")
    return review["entityId"]


def _post(base: str, topic: str, item: dict, what: str) -> None:
    body = trustoo_body(item)
    headers = trustoo_headers(body, public_token=PUBLIC_TOKEN, private_token=PRIVATE_TOKEN)
    answer = httpx.post(f"{base}/webhooks/trustoo/{topic}", content=body, headers=headers, timeout=10)
    print(f"  POST {topic:15} {what:62} → {answer.status_code} {answer.text}")


def _print_reviews(emulator: CommercetoolsEmulator) -> None:
    states = {s["id"]: s["key"] for s in emulator.states.values()}
    products = {p["id"]: p["key"] for p in emulator.products.values()}
    print(f"  {'key':52} {'product':14} {'rating':6} {'state':22} title")
    for review in sorted(emulator.reviews.values(), key=lambda r: r["key"]):
        state = states.get((review.get("state") or {}).get("id"), "-")
        product = products.get(review["target"]["id"], review["target"]["id"])
        print(f"  {review['key']:52} {product:14} {review['rating']:<6} {state:22} {review.get('title', '')}")


def _wait_ready(base: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("reviewbridge serve did not become ready")


def wait_settled(env: dict) -> None:
    """Until nothing is pending, processing or due for retry."""
    for _ in range(200):
        totals = json.loads(_run([REVIEWBRIDGE, "status", "--json"], env))["totals"]
        if not (totals["pending"] or totals["processing"] or totals["retry"]):
            return
        time.sleep(0.25)


def _run(command: list[str], env: dict) -> str:
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=120).stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _say(text: str) -> None:
    print(f"\n== {text}")


if __name__ == "__main__":
    sys.exit(main())
