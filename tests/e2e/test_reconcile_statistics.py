"""reviewbridge reconcile: each product's rating statistics, as Trustoo or Wix shows them, against the
reviewRatingStatistics commercetools computes (issue 18, part 2), in JSON, in the table and on the
admin page."""

from __future__ import annotations

import json

import httpx
import pytest

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core import runs
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN
from tests.cli import cli_runner
from tests.e2e.admin_page_helpers import post_form, sign_in, texts
from tests.e2e.conftest import ADMIN_TOKEN, PRODUCT, wix_settings
from tests.fakes.trustoo import TrustooEmulator

SHOP = TRUSTOO_PUBLIC_TOKEN
AGREEING, DISAGREEING = PRODUCT, "7982301249599"
RATE = 8  # requests a second per shop: the emulator refuses more, the app's shared limit keeps under it


@pytest.fixture
def trustoo():
    """The Trustoo emulator, enforcing a per-shop rate limit (429 past it)."""
    emulator = TrustooEmulator(
        shops={SHOP: TRUSTOO_PRIVATE_TOKEN}, retry_delays_s=(0,) * 10, rate_limit_per_s=RATE, rate_limit_burst=2
    )
    yield emulator
    emulator.close()


@pytest.fixture
def app(ct_environ, ct, clock):
    """ReviewBridge set up against the emulators, on a clock the test moves (commercetools settles)."""
    emulator, _ = ct
    emulator.add_product(key=DISAGREEING)
    app = create_app(ct_environ | {"ADMIN_TOKEN": ADMIN_TOKEN, "TRUSTOO_RATE_LIMIT": str(RATE)}, clock=clock)
    assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
    yield app
    services_of(app).engine.dispose()


def _resync(app, *args: str) -> None:
    result = cli_runner(app).invoke(args=["resync", *args])
    assert result.exit_code == 0, result.output


def _reconcile_json(app, *args: str) -> tuple[int, dict]:
    result = cli_runner(app).invoke(args=["reconcile", *args, "--json"])
    [report] = json.loads(result.stdout)
    return result.exit_code, report


def _shop_with_a_missed_hide(trustoo) -> dict:
    """Two products in sync; then a review of DISAGREEING is hidden in Trustoo and its webhook is lost."""
    for rating in (5, 4, 4):
        trustoo.add_review(SHOP, product_id=AGREEING, rating=rating)
    hidden = trustoo.add_review(SHOP, product_id=DISAGREEING, rating=1)
    trustoo.add_review(SHOP, product_id=DISAGREEING, rating=5)
    return hidden


def test_reconcile_trustoo_json_gives_each_products_statistics_disagreeing_first(app, trustoo, clock):
    hidden = _shop_with_a_missed_hide(trustoo)
    _resync(app, "trustoo")
    clock.advance(120)  # commercetools has settled what the resync wrote
    trustoo.hide_review(SHOP, hidden["id"])

    code, report = _reconcile_json(app, "trustoo")

    assert code == 3 and report["counts"] == {"stale": 1}
    assert report["statistics"] == [
        {
            "product": {"source_id": DISAGREEING, "key": DISAGREEING},
            "source": {"count": 1, "average": 5.0, "distribution": {"5": 1}},
            "target": {"count": 2, "average": 3.0, "distribution": {"1": 1, "5": 1}},
            "agrees": False,
            "settling": False,
        },
        {
            "product": {"source_id": AGREEING, "key": AGREEING},
            "source": {"count": 3, "average": 4.3, "distribution": {"4": 2, "5": 1}},  # Trustoo's own get_rating
            "target": {"count": 3, "average": 4.33333, "distribution": {"4": 2, "5": 1}},
            "agrees": True,
            "settling": False,
        },
    ]
    asked = sorted(tuple(r.query["product_id"]) for r in trustoo.requests if r.path.endswith("/get_rating"))
    assert asked == [(AGREEING,), (DISAGREEING,)]
    assert trustoo.rate_limited == {}  # every call took its turn in the shop's shared rate limit


def test_reconcile_trustoo_statistics_agree_again_once_the_drift_is_fixed(app, trustoo, clock):
    hidden = _shop_with_a_missed_hide(trustoo)
    _resync(app, "trustoo")
    trustoo.hide_review(SHOP, hidden["id"])
    clock.advance(120)
    assert cli_runner(app).invoke(args=["reconcile", "trustoo", "--fix"]).exit_code == 0
    build_worker(services_of(app)).drain()
    clock.advance(120)

    code, report = _reconcile_json(app, "trustoo")

    assert code == 0 and [entry["agrees"] for entry in report["statistics"]] == [True, True]


def test_reconcile_table_shows_the_disagreeing_products_first(app, trustoo, clock):
    hidden = _shop_with_a_missed_hide(trustoo)
    _resync(app, "trustoo")
    clock.advance(120)
    trustoo.hide_review(SHOP, hidden["id"])

    table = cli_runner(app).invoke(args=["reconcile", "trustoo"]).stdout.splitlines()

    assert "rating statistics: 1 of 2 products disagree (count · average · ratings)" in table
    [drift] = [i for i, line in enumerate(table) if line.strip().startswith("drift")]
    [agrees] = [i for i, line in enumerate(table) if line.strip().startswith("agrees")]
    assert drift < agrees
    assert DISAGREEING in table[drift] and "1 · 5.0 · 5★1" in table[drift] and "2 · 3.0 · 1★1 5★1" in table[drift]
    assert AGREEING in table[agrees] and "3 · 4.3 · 4★2 5★1" in table[agrees]


def test_reconcile_a_disagreement_on_a_product_written_in_the_last_minute_is_settling(app, trustoo, clock):
    hidden = _shop_with_a_missed_hide(trustoo)
    _resync(app, "trustoo")
    trustoo.hide_review(SHOP, hidden["id"])  # reconciled at once: commercetools may not have counted yet

    _, report = _reconcile_json(app, "trustoo")
    table = cli_runner(app).invoke(args=["reconcile", "trustoo"]).stdout

    [settling] = [entry for entry in report["statistics"] if not entry["agrees"]]
    assert settling["settling"] is True and settling["product"]["source_id"] == DISAGREEING
    assert "rating statistics: 0 of 2 products disagree, 1 settling" in table


def test_reconcile_counts_other_reviews_of_the_product_that_commercetools_includes(app, trustoo, ct, clock):
    emulator, url = ct
    for rating in (5, 5):
        trustoo.add_review(SHOP, product_id=AGREEING, rating=rating)
    _resync(app, "trustoo")
    [product] = [p for p in emulator.products.values() if p.get("key") == AGREEING]
    native = {"key": "written-in-commercetools", "rating": 2, "target": {"typeId": "product", "id": product["id"]}}
    created = httpx.post(
        f"{url}/reviewbridge-test/reviews", headers={"Authorization": f"Bearer {emulator.issue_token()}"}, json=native
    )
    assert created.status_code == 201
    clock.advance(120)

    code, report = _reconcile_json(app, "trustoo")

    [entry] = report["statistics"]
    assert code == 0 and entry["agrees"] is True
    assert entry["target"] == {"count": 3, "average": 4.0, "distribution": {"2": 1, "5": 2}}
    assert entry["others"] == {"count": 1, "distribution": {"2": 1}}


def test_admin_page_reconcile_report_shows_the_disagreeing_products_first(app, trustoo, clock):
    hidden = _shop_with_a_missed_hide(trustoo)
    _resync(app, "trustoo")
    clock.advance(120)
    trustoo.hide_review(SHOP, hidden["id"])
    page = app.test_client()
    sign_in(page)
    post_form(page, "/admin/runs", "/admin/runs/reconcile", {"source": "trustoo"})
    build_worker(services_of(app)).run_queued_runs()

    [row] = texts(page.get("/admin/runs").get_data(as_text=True), "tr", cls="run", data_kind="reconcile")
    services = services_of(app)
    [reconcile_id] = [r.id for r in runs.recent(services.engine, now=services.clock()) if r.kind == runs.RECONCILE]
    detail = page.get(f"/admin/runs/{reconcile_id}").get_data(as_text=True)  # the CLI's resync is a run too

    assert "rating statistics disagree on 1 of 2 products" in row
    first, second = texts(detail, "tr", cls="product-statistics")
    assert first.startswith("drift") and DISAGREEING in first and "2 · 3.0 · 1★1 5★1" in first
    assert second.startswith("agrees") and AGREEING in second
    assert texts(detail, "tr", cls="product-statistics", data_state="drift") == [first]


# --- Wix: counted from its reviews ------------------------------------------------------------------


@pytest.fixture
def wix_app(ct_environ, wix, clock):
    emulator, url, _ = wix
    app = create_app(
        ct_environ | wix_settings(emulator, url),
        clock=clock,
    )
    assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
    yield app
    services_of(app).engine.dispose()


def test_reconcile_wix_json_counts_published_reviews_and_finds_a_missed_rating_edit(wix_app, wix, ct, clock):
    emulator, _, instance = wix
    ct_emulator, _ = ct
    for entity in ("wix-agreeing", "wix-edited"):
        ct_emulator.add_product(key=entity)
    emulator.add_review(instance, entityId="wix-agreeing", rating=5)
    emulator.add_review(instance, entityId="wix-agreeing", rating=4)
    emulator.add_review(instance, entityId="wix-agreeing", rating=2, moderationStatus="REJECTED")  # not published
    edited = emulator.add_review(instance, entityId="wix-edited", rating=5)
    _resync(wix_app, "wix", "--account", instance)
    clock.advance(120)
    emulator.update_review(instance, edited["id"], rating=2)  # its webhook was lost

    code, report = _reconcile_json(wix_app, "wix", "--account", instance)

    assert code == 3 and report["counts"] == {"stale": 1}
    disagreeing, agreeing = report["statistics"]
    assert disagreeing == {
        "product": {"source_id": "wix-edited", "key": "wix-edited"},
        "source": {"count": 1, "average": 2.0, "distribution": {"2": 1}},
        "target": {"count": 1, "average": 5.0, "distribution": {"5": 1}},
        "agrees": False,
        "settling": False,
    }
    assert agreeing["product"]["source_id"] == "wix-agreeing" and agreeing["agrees"] is True
    assert agreeing["source"] == agreeing["target"] == {"count": 2, "average": 4.5, "distribution": {"4": 1, "5": 1}}


def test_reconcile_source_named_two_different_ways_is_a_usage_error(app):
    result = cli_runner(app).invoke(args=["reconcile", "trustoo", "--source", "wix"])
    assert result.exit_code == 2 and "differ" in result.output
