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


class Mode(enum.Enum):
    """What a limit does when it is reached."""

    HARD = "hard"  # refuses what does not fit
    WARN = "warn"  # never refuses, only alerts


# Alerts at these percentages of a limit unless an admin says otherwise.
DEFAULT_ALERTS: tuple[int, ...] = (80, 100)


class Period(enum.Enum):
    """The window a quota counts over, in FRUGAL_TIMEZONE."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class QuotaUse:
    """One limit that applies to a channel, and how much of it is used now."""

    scope: str  # "channel", "default" or "user" (a person's own limit, or the per-person default)
    target: str  # channel ID, user ID, or "" for the workspace default (per channel or per person)
    metric: Metric
    period: Period
    limit: Decimal
    used: Decimal
    period_start: datetime
    resets_at: datetime
    reserved: Decimal = Decimal(0)  # held by requests in progress, not yet settled
    mode: Mode = Mode.HARD
    alerts: tuple[int, ...] = DEFAULT_ALERTS  # percentages of the limit that alert; () for none
    downgrade: int | None = None  # past this percentage, only the cheapest model is used

    @property
    def remaining(self) -> Decimal:
        """What is left before the limit (never negative)."""
        return max(self.limit - self.used, Decimal(0))


class QuotaReader(Protocol):
    """Reads quota use without changing it."""

    async def channel_quotas(self, team_id: str, channel_id: str, at: datetime) -> list[QuotaUse]:
        """Every limit that applies to the channel (its own and the default), with its use."""
        ...

    async def user_quotas(self, team_id: str, user_id: str, at: datetime) -> list[QuotaUse]:
        """The per-person limits that apply to a user (their own, or the per-person default), with use."""
        ...
