"""Models marked unavailable, and each channel's /classify labels.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.infra.db.base import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_status",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("marked_at", UtcDateTime(), nullable=False),
        sa.Column("retry_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_model_status")),
    )
    op.create_table(
        "channel_labels",
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", name=op.f("pk_channel_labels")),
    )


def downgrade() -> None:
    op.drop_table("channel_labels")
    op.drop_table("model_status")
