"""Each Enterprise Grid workspace's org, so digests and admin alerts find its bot token.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from bot.infra.db.base import UtcDateTime

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    workspaces = op.create_table(
        "slack_workspaces",
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("enterprise_id", sa.String(32), nullable=False),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_slack_workspaces")),
    )
    # Workspaces installed one by one inside a Grid org are in slack_bots already: the latest install wins.
    # (An org-wide install names no workspace; its workspaces are recorded as their requests arrive.)
    bots = op.get_bind().execute(
        sa.text(
            "SELECT team_id, enterprise_id, is_enterprise_install, installed_at FROM slack_bots "
            "WHERE team_id IS NOT NULL AND enterprise_id IS NOT NULL ORDER BY installed_at"
        )
    )
    latest = {
        row.team_id: {
            "team_id": row.team_id,
            "enterprise_id": row.enterprise_id,
            "is_enterprise_install": bool(row.is_enterprise_install),
            "seen_at": _utc(row.installed_at),
        }
        for row in bots
    }
    if latest:
        op.bulk_insert(workspaces, list(latest.values()))


def _utc(value: datetime | str) -> datetime:
    # slack_sdk writes naive UTC; SQLite hands it back as text.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=timezone.utc)


def downgrade() -> None:
    op.drop_table("slack_workspaces")
