"""The usage-ledger port: one row per model call attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class LedgerEntry:
    """One model call attempt: tokens, cost and latency, never message text."""

    team_id: str
    channel_id: str
    user_id: str
    request_key: str
    task: str
    requested_model: str
    served_model: str | None
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None
    baseline_cost_usd: Decimal | None
    energy_wh: float | None
    latency_ms: float
    outcome: str
    error_code: str | None
    attempt: int
    created_at: datetime
    reasoning_tokens: int = 0  # part of completion_tokens
    cache_write_tokens: int = 0  # part of prompt_tokens
    service_tier: str | None = None  # the tier that served the call


class LedgerRepository(Protocol):
    """Where ledger entries are written."""

    async def record(self, entry: LedgerEntry) -> None:
        """Append one entry."""
        ...
