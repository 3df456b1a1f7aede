"""The ledger aggregations a digest reads, and the rows they give (bot/infra/db/digest_queries.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class UsageGroup:
    """One group of ledger rows: a time bucket × model × outcome × error code, summed in SQL."""

    bucket: int
    model: str
    ok: bool
    error_code: str | None
    rows: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    unpriced: int
    compared: int  # rows priced on both their model and the baseline
    compared_cost_usd: Decimal
    compared_baseline_usd: Decimal
    energy_wh: float
    energy_missing: int


@dataclass(frozen=True)
class UserCost:
    """A user's answered requests and their cost in the period."""

    user_id: str
    requests: int
    cost_usd: Decimal


class DigestQueries(Protocol):
    """The ledger aggregations a digest needs (GROUP BY in the database)."""

    async def usage_groups(self, team_id: str, channel_id: str, bounds: Sequence[datetime]) -> list[UsageGroup]:
        """Groups of the rows in [bounds[0], bounds[-1]); bucket i is [bounds[i], bounds[i+1])."""
        ...

    async def top_users(
        self, team_id: str, channel_id: str, start: datetime, end: datetime, limit: int
    ) -> list[UserCost]:
        """The users with the highest cost in [start, end)."""
        ...
