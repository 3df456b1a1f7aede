"""The ledger aggregations usage reports read, and the rows they give (bot/infra/db/usage_queries.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class UsageTotals:
    """One group of ledger rows: a channel's use of one model, split at `recent` when asked."""

    team_id: str
    channel_id: str
    model: str
    requests: int  # answered requests (attempts with outcome ok)
    prompt_tokens: int  # of answered requests; cached tokens are part of these
    cached_tokens: int
    completion_tokens: int
    cost_usd: Decimal  # of the answered requests with a known price
    unpriced: int  # answered requests on a model with no known price
    compared_cost_usd: Decimal  # cost of the answered requests whose baseline cost is known too
    compared_baseline_usd: Decimal  # what those requests would have cost on the baseline model
    failed: int  # failed attempts: nothing was charged for them
    recent: bool = False  # True: rows at or after the split instant


class UsageQueries(Protocol):
    """The ledger aggregations usage reports need."""

    async def totals(
        self,
        start: datetime,
        end: datetime,
        *,
        team_id: str | None = None,
        channel_id: str | None = None,
        split: datetime | None = None,
    ) -> list[UsageTotals]:
        """Rows in [start, end) grouped by workspace, channel and model (and by before/after `split`)."""
        ...
