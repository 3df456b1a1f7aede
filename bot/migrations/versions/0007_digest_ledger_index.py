"""A covering index on the usage ledger for digests (one channel's rows of a period, read from the index alone).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = [
    "team_id",
    "channel_id",
    "created_at",
    "requested_model",
    "outcome",
    "error_code",
    "user_id",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "energy_wh",
]


def upgrade() -> None:
    op.create_index("ix_usage_ledger_digest", "usage_ledger", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_digest", table_name="usage_ledger")
