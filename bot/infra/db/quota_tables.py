"""Quota tables: limits as admins set them, per-period counters, and open reservations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Numeric, String, TypeDecorator, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.db.base import Base

NANO = Decimal("0.000000001")
# "-" and 13 digits (10^12 tokens, quota_spec.MAX_AMOUNT), the point and 9 decimals, with room to spare.
AMOUNT_TEXT_LENGTH = 40


class QuotaAmount(TypeDecorator[Decimal]):
    """An exact amount of any metric, to 9 places: NUMERIC(24, 9) on PostgreSQL, its decimal text on SQLite.

    SQLite stores NUMERIC as a float, so counters summed there drifted (a USD counter read 4.6e-18
    after settling, 0.0014982350000000003 for 0.001498235); as text, every amount is the exact
    decimal, and the arithmetic on it is done in Python (bot.infra.db.quota_store).
    """

    impl = Numeric(24, 9, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(AMOUNT_TEXT_LENGTH))
        return dialect.type_descriptor(Numeric(24, 9, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return exact_text(Decimal(value))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


def exact_text(amount: Decimal) -> str:
    """The amount to 9 places as plain decimal text ("0.001498235", never "-0" or an exponent)."""
    return format(amount.quantize(NANO) + 0, "f")  # + 0 turns a negative zero into zero


class QuotaLimitRow(Base):
    """One limit: an amount of a metric per period, on a channel, the workspace default, or a user."""

    __tablename__ = "quota_limits"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(QuotaAmount())
    set_by: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[datetime]
    # "hard" refuses what does not fit; "warn" never refuses, only alerts.
    mode: Mapped[str] = mapped_column(String(8), server_default=text("'hard'"))
    # The percentages that alert, ascending, comma-separated ("80,100"); "" for none.
    alerts: Mapped[str] = mapped_column(String(64), server_default=text("'80,100'"))
    # Past this percentage only the cheapest model is used (None: never).
    downgrade: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("team_id", "scope", "target", "metric", "period"),)


class QuotaCounterRow(Base):
    """What one counted channel or user used and holds under one limit in one period.

    `counted` is the channel (channel and default scopes) or the user (user scope). A new period
    is a new row; old rows are history.
    """

    __tablename__ = "quota_counters"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    team_id: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16))
    counted: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime]
    used: Mapped[Decimal] = mapped_column(QuotaAmount())
    reserved: Mapped[Decimal] = mapped_column(QuotaAmount())

    __table_args__ = (UniqueConstraint("team_id", "scope", "counted", "metric", "period", "period_start"),)


class QuotaReservationRow(Base):
    """A worst case held before a model call, until it is settled, released or expired."""

    __tablename__ = "quota_reservations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_key: Mapped[str] = mapped_column(String(128), unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    held_tokens: Mapped[int] = mapped_column(BigInteger)
    held_usd: Mapped[Decimal | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (Index(None, "expires_at"),)


class QuotaHoldRow(Base):
    """One counter a reservation holds on (each holds 1 request, or the reservation's tokens or USD)."""

    __tablename__ = "quota_holds"

    reservation_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("quota_reservations.id", ondelete="CASCADE"), primary_key=True
    )
    counter_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("quota_counters.id"), primary_key=True
    )


class QuotaAlertRow(Base):
    """Threshold `threshold` % of a limit (of this amount) reached in one counter's period: the alert is sent once.

    The unique key is what makes it once across processes: only the insert that creates the row sends it.
    """

    __tablename__ = "quota_alerts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    counter_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("quota_counters.id", ondelete="CASCADE")
    )
    threshold: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(QuotaAmount())  # the limit's amount when it fired
    used: Mapped[Decimal] = mapped_column(QuotaAmount())
    fired_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("counter_id", "threshold", "amount"),)
