"""inbox: the claim takes a fair share per account, from an index of open rows by account

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_HAS_NEXT_ATTEMPT = sa.text("next_attempt_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_account_due",
            ["source", "account", "next_attempt_at", "id"],
            unique=False,
            postgresql_where=_HAS_NEXT_ATTEMPT,
            sqlite_where=_HAS_NEXT_ATTEMPT,
        )
        # The claim no longer walks the whole queue in due order.
        batch_op.drop_index("ix_inbox_next_attempt")


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_next_attempt", ["next_attempt_at", "id"], unique=False)
        batch_op.drop_index("ix_inbox_account_due")
