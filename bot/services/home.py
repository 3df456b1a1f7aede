"""The App Home: this month's usage of a user's channels, model health, and for admins every channel's setup."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.ports.home_queries import ChannelUsage, HomeQueries
from bot.ports.model_status import ModelHealth, ModelHealthReader
from bot.ports.quota import QuotaReader, QuotaUse
from bot.services.digest import Subscription
from bot.services.forecast import Forecast, forecasts

# The App Home holds at most 100 blocks; an admin sees this many channels, costliest first.
ADMIN_CHANNELS_SHOWN = 40
# A user sees the forecasts of their costliest channels' USD limits, up to this many channels.
FORECAST_CHANNELS = 8


class SubscriptionLister(Protocol):
    """The digest store, as far as the App Home reads it."""

    async def subscriptions(self, channel_id: str | None = None) -> list[Subscription]:
        """Every live digest schedule."""
        ...


@dataclass(frozen=True)
class ChannelSetup:
    """What an admin sees of one channel: its usage, its quotas and its digest."""

    channel_id: str
    usage: ChannelUsage | None
    quotas: tuple[QuotaUse, ...] | None  # None: quotas cannot be read in this deployment
    digest: Subscription | None
    forecasts: tuple[Forecast, ...] = ()  # of the USD limits among quotas, now


@dataclass(frozen=True)
class HomeView:
    """Everything the App Home shows one user."""

    period_start: datetime
    period_end: datetime
    channels: tuple[ChannelUsage, ...]  # the user's channels with use this period, costliest first
    models: tuple[ModelHealth, ...] | None  # None: no health source
    admin: tuple[ChannelSetup, ...] | None  # None: not an admin
    admin_hidden: int  # channels left out of `admin` for room
    digests_known: bool
    forecasts: tuple[tuple[str, Forecast], ...] = ()  # (channel, forecast) of the user's costliest channels


def month_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar month containing `now` in `tz`, as UTC instants [start, end)."""
    local = now.astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


class HomeService:
    """Builds the App Home view from the ledger and, when present, health, quotas and digests."""

    def __init__(
        self,
        queries: HomeQueries,
        tz: ZoneInfo,
        *,
        health: ModelHealthReader | None = None,
        quotas: QuotaReader | None = None,
        digests: SubscriptionLister | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._queries = queries
        self._tz = tz
        self._health = health
        self._quotas = quotas
        self._digests = digests
        self._clock = clock

    @property
    def timezone(self) -> ZoneInfo:
        """The zone months are counted in (FRUGAL_TIMEZONE)."""
        return self._tz

    async def view(self, team_id: str, user_id: str, member_of: Collection[str], *, is_admin: bool) -> HomeView:
        """The view for `user_id`: channels they belong to or used Frugal in, within `team_id` only."""
        now = self._clock()
        start, end = month_bounds(now, self._tz)
        usage = await self._queries.usage_by_channel(team_id, start, end)
        theirs = set(member_of) | await self._queries.channels_used_by(team_id, user_id, start, end)
        channels = tuple(_costliest_first(u for u in usage if u.channel_id in theirs))
        models = tuple(await self._health.model_health()) if self._health is not None else None
        admin, hidden = await self._admin_view(team_id, usage, now) if is_admin else (None, 0)
        ahead = []
        if self._quotas is not None:
            for u in channels[:FORECAST_CHANNELS]:
                ahead += [
                    (u.channel_id, f)
                    for f in forecasts(await self._quotas.channel_quotas(team_id, u.channel_id, now), now)
                ]
        return HomeView(
            start, end, channels, models, admin, hidden, digests_known=self._digests is not None, forecasts=tuple(ahead)
        )

    async def _admin_view(
        self, team_id: str, usage: list[ChannelUsage], now: datetime
    ) -> tuple[tuple[ChannelSetup, ...], int]:
        digests = {}
        if self._digests is not None:
            digests = {s.channel_id: s for s in await self._digests.subscriptions() if s.team_id == team_id}
        by_channel = {u.channel_id: u for u in usage}
        ordered = [u.channel_id for u in _costliest_first(usage)] + sorted(set(digests) - set(by_channel))
        rows = []
        for channel_id in ordered[:ADMIN_CHANNELS_SHOWN]:
            quotas = None
            if self._quotas is not None:
                quotas = tuple(await self._quotas.channel_quotas(team_id, channel_id, now))
            rows.append(
                ChannelSetup(
                    channel_id,
                    by_channel.get(channel_id),
                    quotas,
                    digests.get(channel_id),
                    forecasts=tuple(forecasts(quotas or (), now)),
                )
            )
        return tuple(rows), max(0, len(ordered) - ADMIN_CHANNELS_SHOWN)


def _costliest_first(usage) -> list[ChannelUsage]:
    return sorted(usage, key=lambda u: (-u.cost_usd, -u.requests, u.channel_id))
