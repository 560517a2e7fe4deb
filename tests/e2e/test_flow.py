"""A signed Trustoo webhook through intake, queue, worker and ledger to the target; health and status."""

from __future__ import annotations

import json

from app.bootstrap import build_worker, services_of
from connectors.base import FixAndReplayError, RetryableTargetError
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner


def _deliver(client, topic: str, *items):
    body = trustoo_body(*items)
    response = client.post(f"/webhooks/trustoo/{topic}", data=body, headers=trustoo_headers(body))
    assert response.status_code == 200


def test_trustoo_review_created_edited_and_deleted_reaches_the_target_once_each(client, services, target):
    worker = build_worker(services)
    review = trustoo_review()
    _deliver(client, "review-created", review)
    _deliver(client, "review-created", review)  # Trustoo's retry of the same delivery
    assert worker.drain() == 1
    [(_operation, key)] = target.calls
    assert target.reviews[key].body == review["content"] and target.reviews[key].rating == 5

    _deliver(client, "review-updated", {**review, "rating": 3})
    worker.drain()
    assert target.reviews[key].rating == 3

    _deliver(client, "review-deleted", {"id": review["id"]})
    worker.drain()
    assert key not in target.reviews
    assert [op for op, _ in target.calls] == ["upsert", "upsert", "delete"]


def test_status_reports_events_by_source_and_status(client, app, services):
    _deliver(client, "review-created", trustoo_review(), trustoo_review())
    _deliver(client, "review-created", {"rating": 2})  # no id: quarantined
    runner = cli_runner(app)
    report = json.loads(runner.invoke(args=["status", "--json"]).output)
    assert report["events"]["trustoo"]["pending"] == 2
    assert report["events"]["trustoo"]["quarantined"] == 1
    assert report["oldest_pending_age_s"] >= 0
    assert "list item has no review id" in report["last_error"]["trustoo"]["error"]
    table = runner.invoke(args=["status"]).output
    assert "trustoo" in table and "oldest pending:" in table


def test_status_with_only_a_retrying_event_says_none_pending_and_gives_the_retry_its_age(client, app, services, target):
    target.fail_next(RetryableTargetError("commercetools answered HTTP 503", status=503, retry_after=600))
    _deliver(client, "review-created", trustoo_review())
    build_worker(services).drain()  # retry, due in ten minutes

    table = cli_runner(app).invoke(args=["status"]).output

    lines = table.splitlines()
    assert "oldest pending: none" in lines
    [retry] = [line for line in lines if line.startswith("oldest retry: ")]
    assert retry != "oldest retry: none"


def test_health_ready_and_metrics_answer(client, services):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json()["status"] == "ready"
    _deliver(client, "review-created", trustoo_review())
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'reviewbridge_webhooks_received_total{outcome="stored",source="trustoo"} 1.0' in metrics
    assert 'reviewbridge_queue_depth{status="pending"} 1.0' in metrics


def test_metrics_give_each_account_its_oldest_pending_age_dead_letters_and_waiting_events(client, services, target):
    labels = f'account="{TRUSTOO_PUBLIC_TOKEN}",source="trustoo"'
    target.fail_next(FixAndReplayError("review text rejected", status=400))
    _deliver(client, "review-created", trustoo_review())
    build_worker(services).drain()  # dead
    _deliver(client, "review-created", trustoo_review())  # pending

    metrics = client.get("/metrics").get_data(as_text=True)

    assert f"reviewbridge_dead_letters{{{labels}}} 1.0" in metrics
    assert f"reviewbridge_waiting_for_product{{{labels}}} 0.0" in metrics
    [age] = [
        line for line in metrics.splitlines() if line.startswith(f"reviewbridge_oldest_pending_age_seconds{{{labels}}}")
    ]
    assert 0 <= float(age.rsplit(" ", 1)[1]) < 60


def test_metrics_give_a_retrying_event_its_own_age_and_no_pending_age(client, services, target):
    labels = f'account="{TRUSTOO_PUBLIC_TOKEN}",source="trustoo"'
    target.fail_next(RetryableTargetError("commercetools answered HTTP 503", status=503, retry_after=600))
    _deliver(client, "review-created", trustoo_review())
    build_worker(services).drain()  # retry, due in ten minutes

    metrics = client.get("/metrics").get_data(as_text=True)

    assert f"reviewbridge_oldest_pending_age_seconds{{{labels}}} 0.0" in metrics
    [age] = [
        line for line in metrics.splitlines() if line.startswith(f"reviewbridge_oldest_retry_age_seconds{{{labels}}}")
    ]
    assert 0 <= float(age.rsplit(" ", 1)[1]) < 60


def test_readyz_is_503_until_migrations_run(tmp_path, target):
    from app import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/empty.db", "LOG_LEVEL": "WARNING"}, targets=[target])
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and "reviewbridge db upgrade" in response.get_json()["reason"]
    services_of(app).engine.dispose()
