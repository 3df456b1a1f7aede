"""The usage-export port: the ledger summed per time bucket, workspace, channel, user and model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class BucketUsage:
    """One bucket's use of one model by one user in one channel."""

    bucket: int  # i: the rows in [bounds[i], bounds[i+1])
    team_id: str
    channel_id: str
    user_id: str
    model: str  # the model asked for (as in every usage report)
    requests: int  # answered requests (attempts with outcome ok)
    prompt_tokens: int  # of answered requests; cached and cache-write tokens are part of these
    cached_tokens: int
    cache_write_tokens: int
    completion_tokens: int  # reasoning tokens are part of these
    reasoning_tokens: int
    cost_usd: Decimal  # of the answered requests with a known price
    unpriced: int  # answered requests on a model with no known price
    baseline_usd: Decimal  # what the answered requests with a known baseline cost would have cost on it
    baseline_unknown: int  # answered requests whose baseline cost is unknown
    failed: int  # failed attempts: nothing was charged for them


class UsageExportQueries(Protocol):
    """The one ledger aggregation exports need."""

    async def bucket_usage(self, bounds: Sequence[datetime], *, channel_id: str | None = None) -> list[BucketUsage]:
        """Rows in [bounds[0], bounds[-1]) grouped by bucket, workspace, channel, user and model."""
        ...
