"""The quota read port: what digests and the App Home show of a channel's quotas."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class Metric(enum.Enum):
    """What a quota counts."""

    REQUESTS = "requests"
    TOKENS = "tokens"
    USD = "usd"


class Period(enum.Enum):
    """The window a quota counts over, in FRUGAL_TIMEZONE."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class QuotaUse:
    """One limit that applies to a channel, and how much of it is used now."""

    scope: str  # "channel", "default" or "user"
    target: str  # channel ID, user ID, or "" for the workspace default
    metric: Metric
    period: Period
    limit: Decimal
    used: Decimal
    period_start: datetime
    resets_at: datetime
    reserved: Decimal = Decimal(0)  # held by requests in progress, not yet settled

    @property
    def remaining(self) -> Decimal:
        """What is left before the limit (never negative)."""
        return max(self.limit - self.used, Decimal(0))


class QuotaReader(Protocol):
    """Reads quota use without changing it."""

    async def channel_quotas(self, team_id: str, channel_id: str, at: datetime) -> list[QuotaUse]:
        """Every limit that applies to the channel (its own and the default), with its use."""
        ...
