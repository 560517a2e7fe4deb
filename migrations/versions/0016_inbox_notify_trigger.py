"""inbox: on PostgreSQL, a statement that stores events notifies the listening workers itself

The intake's INSERT then commits on its own (one round trip) and still sends NOTIFY reviewbridge_inbox
in its transaction: delivered when it commits, never for one rolled back (app/core/inbox_signal.py).
SQLite has no notifications; nothing changes there.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION reviewbridge_inbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM stored) THEN  -- not for a statement that stored only duplicates
                PERFORM pg_notify('reviewbridge_inbox', '');
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER inbox_notify AFTER INSERT ON inbox REFERENCING NEW TABLE AS stored "
        "FOR EACH STATEMENT EXECUTE FUNCTION reviewbridge_inbox_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS inbox_notify ON inbox")
    op.execute("DROP FUNCTION IF EXISTS reviewbridge_inbox_notify()")
