"""review_link: source reviews linked to the one target review they show as (CROSS_SOURCE_IDENTITY)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_link",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=255), nullable=False),
        sa.Column("source_review_id", sa.String(length=255), nullable=False),
        sa.Column("target_key", sa.String(length=256), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=True),
        sa.Column("review", sa.Text(), nullable=True),
        sa.Column("revision", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target", "source", "account", "source_review_id", name="uq_review_link_review"),
    )
    op.create_index("ix_review_link_identity", "review_link", ["target", "identity"])
    op.create_index("ix_review_link_target_key", "review_link", ["target", "target_key"])


def downgrade() -> None:
    op.drop_index("ix_review_link_target_key", table_name="review_link")
    op.drop_index("ix_review_link_identity", table_name="review_link")
    op.drop_table("review_link")
