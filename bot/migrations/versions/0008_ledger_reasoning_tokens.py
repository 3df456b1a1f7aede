"""The usage ledger records reasoning tokens, cache writes and the service tier; token counts are big integers.

Reasoning models report `completion_tokens_details.reasoning_tokens` (part of the completion) and,
from GPT-5.6 on, `prompt_tokens_details.cache_write_tokens` (part of the prompt); the API's token
counts can exceed a 32-bit integer, so every token column holds what it can report.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TOKEN_COLUMNS = ("prompt_tokens", "cached_tokens", "completion_tokens")


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger") as batch:
        for column in TOKEN_COLUMNS:
            batch.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)
        batch.add_column(sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("service_tier", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_ledger") as batch:
        batch.drop_column("service_tier")
        batch.drop_column("cache_write_tokens")
        batch.drop_column("reasoning_tokens")
        for column in TOKEN_COLUMNS:
            batch.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
