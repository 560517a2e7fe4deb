"""accounts, product map per target, echo indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=255), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "account", name="uq_account_source_account"),
    )
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_target_id", ["target", "target_id"], unique=False)
        batch_op.create_index("ix_ledger_target_key", ["target", "target_key"], unique=False)

    with op.batch_alter_table("product_map", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target", sa.String(length=32), server_default="commercetools", nullable=False))
        batch_op.drop_constraint(batch_op.f("uq_product_map_source_product"), type_="unique")
        batch_op.create_unique_constraint(
            "uq_product_map_source_product", ["target", "source", "account", "source_product_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("product_map", schema=None) as batch_op:
        batch_op.drop_constraint("uq_product_map_source_product", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_product_map_source_product"), ["source", "account", "source_product_id"]
        )
        batch_op.drop_column("target")

    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_target_key")
        batch_op.drop_index("ix_ledger_target_id")

    op.drop_table("account")
