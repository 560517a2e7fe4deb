"""inbox: a partial index of open events per review for the claim; the waiting index holds only waiting events

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OPEN = sa.text("status IN ('pending', 'processing', 'retry')")
_WAITING = sa.text("waiting_on IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_open_subject",
            ["source", "account", "subject_id", "id"],
            unique=False,
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        )
        batch_op.drop_index("ix_inbox_waiting")
        batch_op.create_index(
            "ix_inbox_waiting",
            ["source", "account", "waiting_on"],
            unique=False,
            postgresql_where=_WAITING,
            sqlite_where=_WAITING,
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_waiting")
        batch_op.create_index("ix_inbox_waiting", ["source", "account", "waiting_on"], unique=False)
        batch_op.drop_index("ix_inbox_open_subject")
