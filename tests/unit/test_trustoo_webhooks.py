"""Registering Trustoo webhooks keeps each topic delivered to this service exactly once: ours are
found, moved or registered, other apps' registrations are left alone."""

from __future__ import annotations

import pytest

from app.core.trustoo_webhooks import Registration, plan, unregistered

BASE = "https://reviews.example.com"
OLD = "https://old-dyno.herokuapp.com"
TOPICS = ("review/created", "review/updated", "review/deleted")


def _hook(webhook_id: int, topic: str, url: str) -> dict:
    return {"id": webhook_id, "topic": topic, "url": url, "created_at": "2026-01-01 00:00:00"}


def _ours(base: str, first_id: int = 1) -> list[dict]:
    return [
        _hook(first_id + n, topic, f"{base}/webhooks/trustoo/{topic.replace('/', '-')}")
        for n, topic in enumerate(TOPICS)
    ]


def _actions(steps: list[Registration]) -> list[tuple[str, str]]:
    return [(step.action, step.topic) for step in steps]


def test_a_shop_without_registrations_gets_all_three_topics():
    assert _actions(plan([], BASE)) == [("registered", topic) for topic in TOPICS]


def test_registrations_already_at_the_address_are_found_and_nothing_is_written():
    steps = plan(_ours(BASE), BASE)
    assert _actions(steps) == [("found", topic) for topic in TOPICS]
    assert [step.webhook_id for step in steps] == ["1", "2", "3"]


def test_our_registrations_at_an_old_address_are_moved_in_place():
    steps = plan(_ours(OLD), BASE + "/")
    assert _actions(steps) == [("moved", topic) for topic in TOPICS]
    assert steps[0] == Registration(
        "moved",
        "review/created",
        f"{BASE}/webhooks/trustoo/review-created",
        "1",
        was=f"{OLD}/webhooks/trustoo/review-created",
    )


@pytest.mark.parametrize(
    "foreign",
    [
        _hook(9, "review/created", "https://other-app.example.com/hooks/trustoo"),
        _hook(9, "review/created", "https://other-app.example.com/webhooks/trustoo/review-created-v2"),
        _hook(9, "review/created", "https://other-app.example.com/api/webhooks/trustoo/review-created"),
    ],
)
def test_another_apps_registration_is_left_alone(foreign):
    steps = plan([foreign, *_ours(BASE)], BASE)
    assert "9" not in {step.webhook_id for step in steps}
    assert _actions(steps) == [("found", topic) for topic in TOPICS]


def test_our_extra_registrations_of_a_topic_are_deleted_so_each_review_comes_once():
    steps = plan([*_ours(OLD, first_id=1), *_ours(BASE, first_id=4)], BASE)
    assert [(step.action, step.webhook_id) for step in steps] == [
        ("found", "4"),
        ("deleted", "1"),
        ("found", "5"),
        ("deleted", "2"),
        ("found", "6"),
        ("deleted", "3"),
    ]


def test_unregistered_names_the_topics_not_delivered_to_the_address():
    assert unregistered(_ours(BASE), BASE) == []
    assert unregistered(_ours(OLD)[:2], BASE) == list(TOPICS)
    assert unregistered(_ours(BASE)[1:], BASE) == ["review/created"]


def test_a_service_under_a_path_prefix_finds_its_own_registrations_again():
    base = "https://shop.example.com/reviewbridge"
    assert _actions(plan(_ours(base), base)) == [("found", topic) for topic in TOPICS]
