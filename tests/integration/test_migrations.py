"""The schema comes only from migrations, and they agree with the models."""

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import app.core.models  # noqa: F401
from app.core import db, queue_store
from tests.integration.conftest import make_event


def test_models_and_migrations_agree(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_migrations_leave_the_database_at_head(engine):
    assert db.current_revision(engine) == db.head_revision(engine)


def test_upgrade_twice_is_harmless(engine):
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision(engine)


def test_upgrade_respells_stored_outcomes_in_one_spelling(engine):
    now = datetime(2026, 12, 1, tzinfo=UTC)
    command.downgrade(db.alembic_config(engine), "0008")
    queue_store.enqueue(engine, "trustoo", "shop-a", [make_event("r1", at=now)], now=now, quarantine_id="q")
    with engine.begin() as connection:
        connection.execute(text("UPDATE inbox SET outcome = 'routed-nowhere'"))
        connection.execute(
            text("INSERT INTO checkpoint (source, account, name, counts, updated_at) VALUES (:s, :a, :n, :c, :u)"),
            {"s": "trustoo", "a": "shop-a", "n": "resync", "c": '{"would write": 2, "seen": 2}', "u": now},
        )

    db.upgrade(engine)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT outcome FROM inbox")).scalar_one() == "routed_nowhere"
        assert connection.execute(text("SELECT counts FROM checkpoint")).scalar_one() == '{"would_write": 2, "seen": 2}'


def test_upgrade_adds_the_shared_rate_limit_buckets_and_downgrade_removes_them(engine):
    command.downgrade(db.alembic_config(engine), "0011")
    assert "rate_limit" not in inspect(engine).get_table_names()

    db.upgrade(engine)

    schema = inspect(engine)
    assert {column["name"] for column in schema.get_columns("rate_limit")} == {"platform", "account", "free_at"}
    assert schema.get_pk_constraint("rate_limit")["constrained_columns"] == ["platform", "account"]


def test_upgrade_adds_admin_sessions_and_sign_in_failures_and_downgrade_removes_them(engine):
    command.downgrade(db.alembic_config(engine), "0012")
    assert not {"admin_session", "sign_in_failure"} & set(inspect(engine).get_table_names())

    db.upgrade(engine)

    schema = inspect(engine)
    assert schema.get_pk_constraint("admin_session")["constrained_columns"] == ["id_hash"]
    assert {column["name"] for column in schema.get_columns("admin_session")} == {
        "id_hash",
        "token_fingerprint",
        "created_at",
        "expires_at",
        "client_address",
        "user_agent",
    }
    assert schema.get_pk_constraint("sign_in_failure")["constrained_columns"] == ["address"]


def test_upgrade_adds_the_run_journal_and_downgrade_removes_it(engine):
    command.downgrade(db.alembic_config(engine), "0013")
    assert "run_journal" not in inspect(engine).get_table_names()

    db.upgrade(engine)

    schema = inspect(engine)
    assert {column["name"] for column in schema.get_columns("run_journal")} >= {
        "run_id",
        "target_key",
        "before",
        "after",
        "ledger_before",
        "rolled_back_at",
    }
    [unique] = schema.get_unique_constraints("run_journal")
    assert unique["column_names"] == ["run_id", "target", "target_key"]
