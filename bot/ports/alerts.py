"""The alerts ports: telling Frugal's admins that something needs them, and that a quota is filling up."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from bot.ports.quota import QuotaUse


class AdminAlerts(Protocol):
    """Where operational problems are reported; never given message text."""

    async def alert(self, team_id: str | None, text: str, *, dedupe_key: str | None = None) -> None:
        """Tell the admins `text`; alerts with the same dedupe_key are sent once an hour at most."""
        ...


@dataclass(frozen=True)
class QuotaAlert:
    """A limit reached `threshold` % of itself in its period (recorded once across processes)."""

    team_id: str
    use: QuotaUse  # the limit, what is used of it, and when it resets
    counted: str  # the channel (channel and default limits) or the person (per-person limits) it counts
    threshold: int
    refused: bool  # the limit is full and refused a request
    # Who used most: (user ID, amount) for a channel's limit; (channel ID, amount) for a person's.
    top: tuple[str, Decimal] | None = None


class QuotaAlerts(Protocol):
    """Where quota alerts go: the channel (or the person), and the admins."""

    async def quota_alert(self, alert: QuotaAlert) -> None:
        """Send the alert without waiting on Slack; a failure to deliver it is logged, never raised."""
        ...
