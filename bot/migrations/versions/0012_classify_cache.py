"""The classify cache: recent labels under the hash of workspace, label set and text (never the text).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.infra.db.base import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classify_cache",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("served_model", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_classify_cache")),
    )
    op.create_index(op.f("ix_classify_cache_created_at"), "classify_cache", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_classify_cache_created_at"), table_name="classify_cache")
    op.drop_table("classify_cache")
