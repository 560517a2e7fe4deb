"""A signed Trustoo webhook through intake, queue, worker and ledger to the target; health and status."""

from __future__ import annotations

import json

from app.bootstrap import build_worker, services_of
from tests.builders import trustoo_body, trustoo_headers, trustoo_review
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


def test_health_ready_and_metrics_answer(client, services):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json()["status"] == "ready"
    _deliver(client, "review-created", trustoo_review())
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'reviewbridge_webhooks_received_total{outcome="stored",source="trustoo"} 1.0' in metrics
    assert 'reviewbridge_queue_depth{status="pending"} 1.0' in metrics


def test_readyz_is_503_until_migrations_run(tmp_path, target):
    from app import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/empty.db", "LOG_LEVEL": "WARNING"}, targets=[target])
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and "reviewbridge db upgrade" in response.get_json()["reason"]
    services_of(app).engine.dispose()
