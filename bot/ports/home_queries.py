"""The ledger reads the App Home needs, and the rows they give (bot/infra/db/home_queries.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class ChannelUsage:
    """One channel's answered requests, tokens and cost in a window."""

    channel_id: str
    requests: int
    tokens: int
    cost_usd: Decimal  # of the priced requests
    unpriced: int = 0  # requests on models with no known price


class HomeQueries(Protocol):
    """The ledger reads the App Home needs, always within one workspace."""

    async def usage_by_channel(self, team_id: str, start: datetime, end: datetime) -> list[ChannelUsage]:
        """Every channel of the workspace with answered requests in [start, end)."""
        ...

    async def channels_used_by(self, team_id: str, user_id: str, start: datetime, end: datetime) -> set[str]:
        """The channels where the user had requests answered in [start, end)."""
        ...
