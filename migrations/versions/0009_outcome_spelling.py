"""outcomes: one spelling (snake_case) in the inbox and in the counts runs and checkpoints keep

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: (old, new): the inbox's outcome values, and the same words as JSON keys of stored counts.
_RENAMED = [("routed-nowhere", "routed_nowhere"), ("would write", "would_write"), ("would delete", "would_delete")]
_COUNTS = [("run", "counts"), ("checkpoint", "counts")]


def upgrade() -> None:
    _rename(_RENAMED)


def downgrade() -> None:
    _rename([(new, old) for old, new in _RENAMED])


def _rename(pairs: list[tuple[str, str]]) -> None:
    for old, new in pairs:
        op.execute(sa.text("UPDATE inbox SET outcome = :new WHERE outcome = :old").bindparams(old=old, new=new))
        for table, column in _COUNTS:
            op.execute(
                sa.text(
                    f"UPDATE {table} SET {column} = REPLACE({column}, :old, :new) WHERE {column} LIKE :like"
                ).bindparams(old=f'"{old}"', new=f'"{new}"', like=f'%"{old}"%')
            )
