"""Frugal's tables as typed SQLAlchemy 2 models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.db.base import Base


class LedgerRow(Base):
    """One model call attempt (no message text is ever stored)."""

    __tablename__ = "usage_ledger"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    request_key: Mapped[str] = mapped_column(String(128))
    task: Mapped[str] = mapped_column(String(32))
    requested_model: Mapped[str] = mapped_column(String(128))
    served_model: Mapped[str | None] = mapped_column(String(128))
    attempt: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    # Big integers: whatever the API can report fits.
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)  # part of prompt_tokens
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")  # part of completion_tokens
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")  # part of prompt_tokens
    service_tier: Mapped[str | None] = mapped_column(String(16))
    cost_usd: Mapped[Decimal | None]
    baseline_cost_usd: Mapped[Decimal | None]
    energy_wh: Mapped[float | None]
    latency_ms: Mapped[float]

    __table_args__ = (
        Index(None, "team_id", "channel_id", "created_at"),
        Index(None, "created_at"),
        Index(None, "request_key"),
    )
