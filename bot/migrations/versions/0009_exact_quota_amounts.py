"""Exact quota amounts on SQLite: limits and counters as decimal text (SQLite's NUMERIC is a float); PostgreSQL unchanged.

Revision ID: 0009
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0012"
branch_labels = None
depends_on = None

# As bot.infra.db.quota_tables: room for 10^12 with 9 decimals, a sign, and to spare.
_TEXT = sa.String(40)
_NUMERIC = sa.Numeric(24, 9)
_NANO = Decimal("0.000000001")
_COLUMNS = {"quota_limits": ("amount",), "quota_counters": ("used", "reserved")}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's NUMERIC(24, 9) is exact already
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=_TEXT, existing_type=_NUMERIC, existing_nullable=False)
        _exact(table, columns)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=_NUMERIC, existing_type=_TEXT, existing_nullable=False)


def _exact(table: str, columns: tuple[str, ...]) -> None:
    """Rewrite each copied value as the exact decimal it stood for (the float's drift below 9 places dropped)."""
    conn = op.get_bind()
    listed = ", ".join(columns)
    for row in conn.execute(sa.text(f"SELECT id, {listed} FROM {table}")).all():
        values = {column: _text(row._mapping[column]) for column in columns}
        assignments = ", ".join(f"{column} = :{column}" for column in columns)
        conn.execute(sa.text(f"UPDATE {table} SET {assignments} WHERE id = :id"), {"id": row.id, **values})


def _text(value: object) -> str:
    return format(Decimal(str(value)).quantize(_NANO) + 0, "f")
