"""CROSS_SOURCE_IDENTITY and SOURCE_PRECEDENCE end to end: a review that Trustoo and Wix both have is
one commercetools review, showing the preferred source's version and listing both, through edits,
hides and deletes at either source, and a resync merges the duplicates an earlier deployment made."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core import ledger
from app.core.pipeline import sync
from connectors.base import Event, EventKind, Review
from connectors.commercetools_mapping import CUSTOM_FIELDS, CUSTOM_TYPE_KEY, review_key
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner
from tests.e2e.conftest import PRODUCT, wix_settings

SHOP = TRUSTOO_PUBLIC_TOKEN


@pytest.fixture
def make_app(ct_environ, wix):
    emulator, url, _ = wix
    apps = []

    def make(**variables: str):
        app = create_app(ct_environ | wix_settings(emulator, url) | variables)
        assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
        apps.append(app)
        return app

    yield make
    for app in apps:
        services_of(app).engine.dispose()


def _resync(app, source: str, *args: str) -> dict:
    result = cli_runner(app).invoke(args=["resync", source, "--json", *args])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    return report


def _resync_both(app, instance: str) -> dict:
    """Resync Trustoo, then the Wix site: the Wix report (where merges happen, Trustoo coming first)."""
    _resync(app, "trustoo")
    return _resync(app, "wix", "--account", instance)


def _pair(trustoo, wix, **trustoo_fields):
    """The same customer's review of the same product, in Trustoo and (typed a little differently) in Wix."""
    emulator, _, instance = wix
    at_trustoo = trustoo.add_review(
        SHOP,
        product_id=PRODUCT,
        rating=5,
        author="Dana Smith",
        author_email="dana@example.com",
        content="Great mug, keeps coffee hot!",
        **trustoo_fields,
    )
    at_wix = emulator.add_review(
        instance, entityId=PRODUCT, rating=5, authorName="dana  smith", body="Great mug, keeps coffee hot"
    )
    return at_trustoo, at_wix


def _keys(trustoo_review, wix_review, instance) -> tuple[str, str]:
    return review_key("trustoo", SHOP, str(trustoo_review["id"])), review_key("wix", instance, wix_review["id"])


def _ours(ct_emulator) -> list[dict]:
    return [r for r in ct_emulator.reviews.values() if (r.get("target") or {}).get("typeId") == "product"]


def _writes(ct_emulator) -> int:
    return sum(1 for r in ct_emulator.requests if r.method in ("POST", "DELETE") and "/reviews" in r.path)


def test_same_review_in_trustoo_and_wix_is_one_commercetools_review_listing_both(make_app, trustoo, wix, ct):
    ct_emulator, _ = ct
    _, _, instance = wix
    app = make_app(CROSS_SOURCE_IDENTITY="content")
    at_trustoo, at_wix = _pair(trustoo, wix)
    assert _resync(app, "trustoo")["counts"]["created"] == 1
    report = _resync(app, "wix", "--account", instance)
    trustoo_key, _ = _keys(at_trustoo, at_wix, instance)
    assert report["counts"]["merged"] == 1
    assert report["merges"] == [{"review": at_wix["id"], "from": "", "into": trustoo_key}]
    [merged] = _ours(ct_emulator)
    assert merged["key"] == trustoo_key and merged["text"] == "Great mug, keeps coffee hot!", "Trustoo comes first"
    fields = merged["custom"]["fields"]
    assert fields["source"] == "trustoo"
    assert json.loads(fields["linkedSources"]) == [
        {"source": "trustoo", "account": SHOP, "sourceReviewId": str(at_trustoo["id"])},
        {"source": "wix", "account": instance, "sourceReviewId": at_wix["id"]},
    ]
    engine = services_of(app).engine
    rows = (
        ledger.load(engine, "trustoo", SHOP, str(at_trustoo["id"]), "commercetools"),
        ledger.load(engine, "wix", instance, at_wix["id"], "commercetools"),
    )
    assert {row.ref.key for row in rows if row and row.ref} == {trustoo_key}, "both ledger rows link the one review"


def test_source_precedence_wix_first_shows_the_wix_version(make_app, trustoo, wix, ct):
    ct_emulator, _ = ct
    _, _, instance = wix
    app = make_app(CROSS_SOURCE_IDENTITY="content", SOURCE_PRECEDENCE="wix,trustoo")
    _pair(trustoo, wix)
    _resync_both(app, instance)
    [merged] = _ours(ct_emulator)
    assert (merged["text"], merged["authorName"], merged["custom"]["fields"]["source"]) == (
        "Great mug, keeps coffee hot",
        "dana  smith",
        "wix",
    )


def test_an_edit_in_the_lower_precedence_source_writes_nothing_while_the_higher_one_has_it(make_app, trustoo, wix, ct):
    ct_emulator, _ = ct
    emulator, _, instance = wix
    app = make_app(CROSS_SOURCE_IDENTITY="content")
    _, at_wix = _pair(trustoo, wix)
    _resync_both(app, instance)
    writes = _writes(ct_emulator)
    emulator.update_review(instance, at_wix["id"], body="Great mug, keeps coffee hot. Update: still great")
    report = _resync(app, "wix", "--account", instance)
    assert report["counts"].get("failed", 0) == 0
    assert _writes(ct_emulator) == writes, "nothing visible changed, so nothing was written"
    [merged] = _ours(ct_emulator)
    assert merged["text"] == "Great mug, keeps coffee hot!"


def test_hidden_or_deleted_in_one_source_shows_the_next_and_deleted_in_all_deletes(make_app, trustoo, wix, ct):
    ct_emulator, _ = ct
    emulator, _, instance = wix
    app = make_app(CROSS_SOURCE_IDENTITY="content")
    at_trustoo, at_wix = _pair(trustoo, wix)
    _resync_both(app, instance)
    trustoo_key, _ = _keys(at_trustoo, at_wix, instance)

    trustoo.delete_review_in_admin(SHOP, at_trustoo["id"])
    _resync(app, "trustoo")
    [merged] = _ours(ct_emulator)
    assert merged["key"] == trustoo_key, "the review keeps its key and id"
    assert (merged["text"], merged["custom"]["fields"]["source"]) == ("Great mug, keeps coffee hot", "wix")
    assert "linkedSources" not in merged["custom"]["fields"], "only Wix has it now"

    emulator.delete_review(instance, at_wix["id"])
    _resync(app, "wix", "--account", instance)
    assert _ours(ct_emulator) == [], "deleted in every source: deleted in commercetools"


def test_existing_duplicates_are_shown_by_a_dry_run_and_merged_by_the_real_resync(make_app, trustoo, wix, ct):
    ct_emulator, _ = ct
    _, _, instance = wix
    before = make_app()  # CROSS_SOURCE_IDENTITY off: today's behaviour, one review per source
    at_trustoo, at_wix = _pair(trustoo, wix)
    _resync_both(before, instance)
    assert len(_ours(ct_emulator)) == 2
    trustoo_key, wix_key = _keys(at_trustoo, at_wix, instance)

    app = make_app(CROSS_SOURCE_IDENTITY="content")
    writes = _writes(ct_emulator)
    assert _resync(app, "trustoo")["counts"]["unchanged"] == 1, "the first source only links its reviews"
    assert _writes(ct_emulator) == writes
    dry = _resync(app, "wix", "--account", instance, "--dry-run")
    assert dry["counts"]["would_merge"] == 1
    assert dry["merges"] == [{"review": at_wix["id"], "from": wix_key, "into": trustoo_key}]
    assert _writes(ct_emulator) == writes, "a dry run writes nothing"

    report = _resync(app, "wix", "--account", instance)
    assert report["counts"]["merged"] == 1
    assert report["merges"] == [{"review": at_wix["id"], "from": wix_key, "into": trustoo_key}]
    [merged] = _ours(ct_emulator)
    assert merged["key"] == trustoo_key and ct_emulator.review_by_key(wix_key) is None
    assert {link["source"] for link in json.loads(merged["custom"]["fields"]["linkedSources"])} == {"trustoo", "wix"}
    assert _resync(app, "wix", "--account", instance)["counts"]["unchanged"] == 1, "merging twice changes nothing"


def test_customer_rule_merges_by_the_authors_email_read_through_wix_contacts(make_app, trustoo, wix, ct):
    ct_emulator, _ = ct
    emulator, _, instance = wix
    app = make_app(CROSS_SOURCE_IDENTITY="customer")
    at_trustoo = trustoo.add_review(
        SHOP, product_id=PRODUCT, rating=4, author="Dana S.", author_email="dana@example.com", content="Nice mug."
    )
    contact = emulator.add_contact(instance, email="Dana@Example.com")
    at_wix = emulator.add_review(
        instance, entityId=PRODUCT, rating=5, contactId=contact["id"], authorName="Dana", body="Love it"
    )
    stranger = emulator.add_review(instance, entityId=PRODUCT, rating=5, authorName="Sam", body="Love it")
    _resync(app, "trustoo")
    report = _resync(app, "wix", "--account", instance)
    assert (report["counts"]["merged"], report["counts"]["created"]) == (1, 1)
    trustoo_key, _ = _keys(at_trustoo, at_wix, instance)
    assert [merge["review"] for merge in report["merges"]] == [at_wix["id"]]
    assert len(_ours(ct_emulator)) == 2, "the merged review, and the other customer's own"
    merged = ct_emulator.review_by_key(trustoo_key)
    assert (merged["rating"], merged["text"]) == (4, "Nice mug."), "Trustoo's version, by precedence"
    assert ct_emulator.review_by_key(review_key("wix", instance, stranger["id"])) is not None
    asked = len([r for r in emulator.requests if "/contacts/" in r.path])
    assert asked == 2, "each author's contact once (the stranger's is unknown to Wix: no e-mail, no merge)"
    _resync(app, "wix", "--account", instance)
    assert len([r for r in emulator.requests if "/contacts/" in r.path]) == asked, "linked reviews ask no more"


def _reconcile(app, source: str, *args: str) -> dict:
    result = cli_runner(app).invoke(args=["reconcile", source, "--json", *args])
    assert result.exit_code in (0, 3), result.output
    [report] = json.loads(result.output)
    return report


def test_reconcile_of_either_source_finds_no_drift_in_a_merged_review(make_app, trustoo, wix, ct):
    _, _, instance = wix
    app = make_app(CROSS_SOURCE_IDENTITY="content")
    _pair(trustoo, wix)
    _resync_both(app, instance)
    for source, args in (("trustoo", ()), ("wix", ("--account", instance))):
        report = _reconcile(app, source, *args)
        assert report["counts"] == {}, (source, report["examples"])
        [product] = report["statistics"]
        assert product["agrees"] and product["target"]["count"] == 1, (source, product)


def test_a_trustoo_hide_webhook_makes_the_merged_review_show_the_wix_version(make_app, trustoo, wix, ct):
    ct_emulator, _ = ct
    _, _, instance = wix
    app = make_app(CROSS_SOURCE_IDENTITY="content")
    at_trustoo, at_wix = _pair(trustoo, wix)
    _resync_both(app, instance)
    trustoo.hide_review(SHOP, at_trustoo["id"])
    body = trustoo_body(trustoo_review(id=at_trustoo["id"], product_id=PRODUCT, is_published=0))
    response = app.test_client().post(
        "/webhooks/trustoo/review-deleted", data=body, headers=trustoo_headers(body, timestamp=int(time.time()) + 2)
    )
    assert response.status_code == 200
    build_worker(services_of(app)).drain()
    [merged] = _ours(ct_emulator)
    trustoo_key, _ = _keys(at_trustoo, at_wix, instance)
    assert merged["key"] == trustoo_key
    assert (merged["text"], merged["custom"]["fields"]["source"]) == ("Great mug, keeps coffee hot", "wix")
    state = ct_emulator.states[merged["state"]["id"]]
    assert state["key"] == "reviewbridge-published", "Wix still has it published"
    assert json.loads(merged["custom"]["fields"]["linkedSources"])[0]["source"] == "trustoo", "hidden, still linked"


def test_setup_adds_linked_sources_to_the_custom_type_an_older_version_made(ct_environ, ct):
    ct_emulator, _ = ct
    older = {name: kind for name, kind in CUSTOM_FIELDS.items() if name != "linkedSources"}
    ct_emulator.add_type(CUSTOM_TYPE_KEY, older)
    app = create_app(ct_environ)
    try:
        runner = cli_runner(app)
        result = runner.invoke(args=["setup", "commercetools"])
        assert result.exit_code == 0, result.output
        assert f"type {CUSTOM_TYPE_KEY}: present, field linkedSources added" in result.output
        [custom_type] = [t for t in ct_emulator.types.values() if t["key"] == CUSTOM_TYPE_KEY]
        assert {d["name"] for d in custom_type["fieldDefinitions"]} == set(CUSTOM_FIELDS)
        again = runner.invoke(args=["setup", "commercetools"])
        assert f"type {CUSTOM_TYPE_KEY}: present\n" in again.output, "a second setup adds nothing"
    finally:
        services_of(app).engine.dispose()


def test_rolling_back_the_merging_resync_brings_the_extra_copy_back_and_unmerges(make_app, trustoo, wix, ct):
    ct_emulator, _ = ct
    _, _, instance = wix
    before = make_app()
    at_trustoo, at_wix = _pair(trustoo, wix)
    _resync_both(before, instance)
    trustoo_key, wix_key = _keys(at_trustoo, at_wix, instance)
    app = make_app(CROSS_SOURCE_IDENTITY="content")
    _resync(app, "trustoo")
    run_id = _resync(app, "wix", "--account", instance)["run_id"]
    assert ct_emulator.review_by_key(wix_key) is None

    result = cli_runner(app).invoke(args=["rollback", str(run_id), "--json"])
    assert result.exit_code == 0, result.output
    actions = {review["key"]: review["action"] for review in json.loads(result.output)["reviews"]}
    assert actions == {trustoo_key: "restored", wix_key: "recreated"}
    assert "linkedSources" not in ct_emulator.review_by_key(trustoo_key)["custom"]["fields"]
    assert ct_emulator.review_by_key(wix_key)["text"] == "Great mug, keeps coffee hot"
    off = make_app()  # merging off: the two stay apart
    assert _resync(off, "wix", "--account", instance)["counts"]["unchanged"] == 1
    assert len(_ours(ct_emulator)) == 2


def test_two_workers_writing_both_sources_of_one_review_at_once_end_on_one_review_listing_both(make_app, ct):
    ct_emulator, _ = ct
    app = make_app(CROSS_SOURCE_IDENTITY="content")
    services = services_of(app)
    [target] = [t for t in services.targets if t.name == "commercetools"]
    for round_ in range(6):
        reviews = [
            Review(
                source=source,
                account=account,
                source_id=f"{source}-{round_}",
                product_id=PRODUCT,
                rating=4,
                author_name="Ravi Patel",
                body=f"Sturdy and warm, round {round_}",
            )
            for source, account in (("trustoo", SHOP), ("wix", "site-1"))
        ]
        barrier = threading.Barrier(2)

        def write(review: Review, barrier: threading.Barrier) -> None:
            event = Event(
                source=review.source,
                account=review.account,
                event_id=f"e-{review.source_id}",
                kind=EventKind.UPSERT,
                subject_id=review.source_id,
                topic="test",
                occurred_at=datetime.now(UTC),
                payload={},
            )
            barrier.wait()
            sync(event, review, target, services)

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(write, reviews, [barrier, barrier]))
        found = [r for r in _ours(ct_emulator) if f"round {round_}" in r["text"]]
        assert len(found) == 1, f"round {round_}: {[r['key'] for r in found]}"
        linked = json.loads(found[0]["custom"]["fields"]["linkedSources"])
        assert sorted(entry["source"] for entry in linked) == ["trustoo", "wix"]
        keys = {
            ledger.load(services.engine, r.source, r.account, r.source_id, "commercetools").ref.key for r in reviews
        }
        assert keys == {found[0]["key"]}


def test_the_run_page_lists_the_merges_a_resync_made(make_app, trustoo, wix, ct):
    from tests.e2e.admin_page_helpers import sign_in
    from tests.e2e.conftest import ADMIN_TOKEN

    _, _, instance = wix
    before = make_app()
    at_trustoo, at_wix = _pair(trustoo, wix)
    _resync_both(before, instance)
    trustoo_key, wix_key = _keys(at_trustoo, at_wix, instance)
    app = make_app(CROSS_SOURCE_IDENTITY="content", ADMIN_TOKEN=ADMIN_TOKEN)
    _resync(app, "trustoo")
    run_id = _resync(app, "wix", "--account", instance)["run_id"]
    client = app.test_client()
    assert sign_in(client).status_code == 302
    page = client.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    assert "Merged reviews" in page and trustoo_key in page and f"{wix_key}</code> (deleted)" in page
