"""The quota store port: limits, and reserve-then-settle against per-period counters."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from bot.ports.quota import Metric, Period


class Scope(enum.Enum):
    """Whom a limit is set on."""

    CHANNEL = "channel"  # target: a channel ID
    DEFAULT = "default"  # target: ""; applies to each channel without its own limit of that metric and period
    USER = "user"  # target: a user ID; counts the user's requests in every channel


@dataclass(frozen=True)
class LimitRecord:
    """One limit as an admin set it."""

    scope: Scope
    target: str
    metric: Metric
    period: Period
    amount: Decimal


@dataclass(frozen=True)
class CounterState:
    """A limit that applies to a request or channel, with its counter for the current period."""

    limit: LimitRecord
    period_start: datetime
    used: Decimal
    reserved: Decimal

    def need(self, level: Level) -> Decimal | None:
        """What holding `level` takes from this counter (None: an unknown price)."""
        if self.limit.metric is Metric.REQUESTS:
            return Decimal(1)
        if self.limit.metric is Metric.TOKENS:
            return Decimal(level.tokens)
        return level.usd

    def fits(self, level: Level) -> bool:
        """Whether `level` can still be held under the limit."""
        need = self.need(level)
        return need is not None and self.used + self.reserved + need <= self.limit.amount


@dataclass(frozen=True)
class Level:
    """One candidate hold: the worst case of a set of models (requests are always 1)."""

    tokens: int
    usd: Decimal | None  # None: a price is unknown, so it fits no USD limit


@dataclass(frozen=True)
class Usage:
    """What a settled request really used."""

    requests: int
    tokens: int
    usd: Decimal


@dataclass(frozen=True)
class ReserveRequest:
    """Hold the largest level that fits every limit applying to the channel and user, or nothing."""

    reservation_id: str
    request_key: str
    team_id: str
    channel_id: str
    user_id: str
    levels: tuple[Level, ...]  # ascending: each level is at least the one before it in every metric
    starts: Mapping[Period, datetime]  # the current period starts
    now: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Reservation:
    """The outcome of a reserve: which level is held (None: refused) and the limits as they stood."""

    reservation_id: str
    level: int | None
    held: bool  # False when no limit applies (nothing to settle) or when refused
    counters: tuple[CounterState, ...]


@dataclass(frozen=True)
class ExpiredHold:
    """A reservation past its expiry, with what the ledger says its request used."""

    reservation_id: str
    request_key: str
    usage: Usage


def best_level(counters: Sequence[CounterState], levels: Sequence[Level]) -> int | None:
    """The index of the largest level that fits every counter, or None when not even the first does."""
    for index in range(len(levels) - 1, -1, -1):
        if all(counter.fits(levels[index]) for counter in counters):
            return index
    return None


class DuplicateReservation(Exception):
    """A reservation with this request key is already open (held by whoever still answers the request)."""


class QuotaStore(Protocol):
    """Limits and counters, atomic across processes."""

    async def reserve(self, request: ReserveRequest) -> Reservation:
        """Atomically hold the largest fitting level on every applying counter, or hold nothing."""
        ...

    async def settle(self, reservation_id: str, usage: Usage) -> bool:
        """Replace the hold by the real usage; False when the reservation is gone (expired or settled)."""
        ...

    async def release(self, reservation_id: str) -> bool:
        """Drop the hold without counting anything; False when the reservation is gone."""
        ...

    async def expire(self, now: datetime) -> int:
        """Settle every reservation past its expiry to what the ledger recorded; how many there were."""
        ...

    async def take_over(self, request_key: str) -> bool:
        """Settle the hold left on this request key by a process that lost its delivery to a retry; True if one was."""
        ...

    async def drain(self) -> None:
        """Write the settlements still pending (kept through a database outage) before the process ends."""
        ...

    async def set_limit(
        self, team_id: str, limit: LimitRecord, *, set_by: str, starts: Mapping[Period, datetime], now: datetime
    ) -> None:
        """Create or replace a limit; the current period's counters start from the ledger's usage so far."""
        ...

    async def clear_limits(
        self, team_id: str, scope: Scope, target: str, metric: Metric | None = None, period: Period | None = None
    ) -> int:
        """Remove the target's limits (or only the one of that metric and period); how many were removed."""
        ...

    async def limits(self, team_id: str, scope: Scope, target: str) -> list[LimitRecord]:
        """The limits set on exactly this target."""
        ...

    async def applicable(
        self, team_id: str, channel_id: str, user_id: str | None, starts: Mapping[Period, datetime]
    ) -> list[CounterState]:
        """The limits that apply to a channel (and user, if given), with current counters; nothing is changed."""
        ...
