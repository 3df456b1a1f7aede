"""The quota store port: limits, and reserve-then-settle against per-period counters."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from bot.ports.quota import DEFAULT_ALERTS, Metric, Mode, Period


class Scope(enum.Enum):
    """Whom a limit is set on."""

    CHANNEL = "channel"  # target: a channel ID
    DEFAULT = "default"  # target: ""; applies to each channel without its own limit of that metric and period
    USER = "user"  # target: a user ID; counts the user's requests in every channel
    # target: ""; applies to each user without their own limit of that metric and period, counted per user
    DEFAULT_USER = "default_user"

    @property
    def per_user(self) -> bool:
        """Whether the limit counts a person's use (in every channel) rather than a channel's."""
        return self in (Scope.USER, Scope.DEFAULT_USER)

    @property
    def is_default(self) -> bool:
        """Whether the limit is a workspace default (target "", one counter per channel or person)."""
        return self in (Scope.DEFAULT, Scope.DEFAULT_USER)


@dataclass(frozen=True)
class LimitRecord:
    """One limit as an admin set it."""

    scope: Scope
    target: str
    metric: Metric
    period: Period
    amount: Decimal
    mode: Mode = Mode.HARD
    alerts: tuple[int, ...] = DEFAULT_ALERTS  # ascending percentages; () for no alerts
    downgrade: int | None = None  # percentage past which only the cheapest model is used


@dataclass(frozen=True)
class CounterState:
    """A limit that applies to a request or channel, with its counter for the current period."""

    limit: LimitRecord
    period_start: datetime
    used: Decimal
    reserved: Decimal
    counter_id: int | None = None  # None: no counter yet (nothing counted this period)
    counted: str = ""  # the channel or user this counter counts

    @property
    def binds(self) -> bool:
        """Whether this limit may refuse (a `warn` limit never does)."""
        return self.limit.mode is Mode.HARD

    @property
    def downgrading(self) -> bool:
        """Whether use (with what is held) is past the limit's downgrade share."""
        share = self.limit.downgrade
        return self.binds and share is not None and (self.used + self.reserved) * 100 >= share * self.limit.amount

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
    # The worst case of the cheapest model alone: held instead when a limit is past its downgrade share.
    cheapest: Level | None = None


@dataclass(frozen=True)
class Reservation:
    """The outcome of a reserve: which level is held (None: refused) and the limits as they stood."""

    reservation_id: str
    level: int | None
    held: bool  # False when no limit applies (nothing to settle) or when refused
    counters: tuple[CounterState, ...]
    downgraded: bool = False  # the cheapest level is held: only the cheapest model may be tried


@dataclass(frozen=True)
class FiredAlert:
    """Threshold `threshold` % of a limit was reached in a period, recorded once across processes."""

    team_id: str
    limit: LimitRecord
    counted: str  # the channel or user whose counter reached it
    period_start: datetime
    threshold: int
    used: Decimal
    refused: bool = False  # recorded by a refusal (the limit is full) rather than by a settle


@dataclass(frozen=True)
class Settled:
    """What a settle did: whether it found its hold, and the alert thresholds it was first to reach."""

    owned: bool
    alerts: tuple[FiredAlert, ...] = ()

    def __bool__(self) -> bool:
        return self.owned


@dataclass(frozen=True)
class ExpiredHold:
    """A reservation past its expiry, with what the ledger says its request used."""

    reservation_id: str
    request_key: str
    usage: Usage


def best_level(counters: Sequence[CounterState], levels: Sequence[Level]) -> int | None:
    """The index of the largest level that fits every limit that may refuse, or None when not even the first does."""
    binding = [counter for counter in counters if counter.binds]
    for index in range(len(levels) - 1, -1, -1):
        if all(counter.fits(levels[index]) for counter in binding):
            return index
    return None


def choose_level(counters: Sequence[CounterState], request: ReserveRequest) -> tuple[Level | None, int | None, bool]:
    """The level to hold, its index (0 for the cheapest), and whether it is the downgrade; (None, None, _) refuses."""
    if request.cheapest is not None and any(counter.downgrading for counter in counters):
        fits = best_level(counters, [request.cheapest]) is not None
        return (request.cheapest, 0, True) if fits else (None, None, True)
    index = best_level(counters, request.levels)
    return (None, None, False) if index is None else (request.levels[index], index, False)


def hold_need(counter: CounterState, level: Level) -> Decimal:
    """What holding `level` adds to the counter's reserve (an unknown price holds nothing on a `warn` limit)."""
    return counter.need(level) or Decimal(0)


class DuplicateReservation(Exception):
    """A reservation with this request key is already open (held by whoever still answers the request)."""


class QuotaStore(Protocol):
    """Limits and counters, atomic across processes."""

    async def reserve(self, request: ReserveRequest) -> Reservation:
        """Atomically hold the largest fitting level on every applying counter, or hold nothing."""
        ...

    async def settle(self, reservation_id: str, usage: Usage) -> Settled:
        """Replace the hold by the real usage, recording each alert threshold now reached for the first time."""
        ...

    async def record_refusal(self, team_id: str, counter: CounterState, threshold: int) -> FiredAlert | None:
        """Record that a full limit refused (threshold `threshold`); the alert if this was the first record."""
        ...

    async def top_user(
        self, team_id: str, scope: Scope, counted: str, metric: Metric, start: datetime
    ) -> tuple[str, Decimal] | None:
        """Who used most of a channel's limit since `start` (or, for a person's limit, in which channel)."""
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

    async def applicable_to_user(
        self, team_id: str, user_id: str, starts: Mapping[Period, datetime]
    ) -> list[CounterState]:
        """The per-person limits that apply to a user (their own, or the per-person default), with counters."""
        ...
