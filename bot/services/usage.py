"""Usage and cost from the ledger: one channel's month and day with its quotas (/usage), or every channel (`frugal usage`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.ports.quota import Period, QuotaReader, QuotaUse
from bot.ports.usage_queries import UsageQueries, UsageTotals
from bot.services.forecast import Forecast, forecasts
from bot.services.quota_spec import period_start


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ModelLine:
    """The use of one model (or of all of them, for a total)."""

    model: str
    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0
    compared_cost_usd: Decimal = Decimal(0)
    compared_baseline_usd: Decimal = Decimal(0)
    failed: int = 0

    def plus(self, other: UsageTotals | ModelLine) -> ModelLine:
        """This line with `other`'s counts added."""
        return ModelLine(
            self.model,
            self.requests + other.requests,
            self.prompt_tokens + other.prompt_tokens,
            self.cached_tokens + other.cached_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
            self.unpriced + other.unpriced,
            self.compared_cost_usd + other.compared_cost_usd,
            self.compared_baseline_usd + other.compared_baseline_usd,
            self.failed + other.failed,
        )

    @property
    def cost_known(self) -> bool:
        """False when some answered request had no known price, so `cost_usd` is only part of the cost."""
        return self.unpriced == 0

    @property
    def savings_usd(self) -> Decimal | None:
        """Saved against the baseline model, over the requests priced on both; None when there are none."""
        if self.compared_cost_usd == 0 and self.compared_baseline_usd == 0:
            return None
        return self.compared_baseline_usd - self.compared_cost_usd


@dataclass(frozen=True)
class PeriodUsage:
    """A window's use, by model (costliest first), with its total."""

    start: datetime
    end: datetime
    models: tuple[ModelLine, ...]
    total: ModelLine


@dataclass(frozen=True)
class ChannelReport:
    """What /usage shows: this month and today so far, and every quota that applies to the channel."""

    channel_id: str
    tz: ZoneInfo
    month: PeriodUsage
    today: PeriodUsage
    quotas: tuple[QuotaUse, ...]
    forecasts: tuple[Forecast, ...] = ()  # of the USD limits among quotas and mine, at the time of the report
    mine: tuple[QuotaUse, ...] = ()  # the per-person limits of the one asking (their own or the default)


@dataclass(frozen=True)
class UsageTable:
    """What `frugal usage` prints: one line per workspace, channel and model, and the grand total."""

    start: datetime
    end: datetime
    lines: tuple[tuple[str, str, ModelLine], ...]  # (team_id, channel_id, line), costliest channel first
    total: ModelLine


class UsageService:
    """Reads usage, cost and quota headroom; knows nothing of Slack or terminals."""

    def __init__(
        self,
        queries: UsageQueries,
        quotas: QuotaReader | None,
        tz: ZoneInfo,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._queries = queries
        self._quotas = quotas
        self.tz = tz
        self._clock = clock

    async def channel_report(self, team_id: str, channel_id: str, user_id: str | None = None) -> ChannelReport:
        """The channel's use this month and today (in FRUGAL_TIMEZONE) so far, its quotas now, and the
        per-person limits of ``user_id`` (the one asking), if given."""
        now = self._clock()
        month_start, day_start = period_start(Period.MONTH, now, self.tz), period_start(Period.DAY, now, self.tz)
        rows = await self._queries.totals(month_start, now, team_id=team_id, channel_id=channel_id, split=day_start)
        quotas: list[QuotaUse] = []
        mine: list[QuotaUse] = []
        if self._quotas is not None:
            quotas = await self._quotas.channel_quotas(team_id, channel_id, now)
            if user_id is not None:
                mine = await self._quotas.user_quotas(team_id, user_id, now)
        return ChannelReport(
            channel_id=channel_id,
            tz=self.tz,
            month=_period(month_start, now, rows),
            today=_period(day_start, now, [r for r in rows if r.recent]),
            quotas=tuple(quotas),
            forecasts=tuple(forecasts(quotas + mine, now)),
            mine=tuple(mine),
        )

    async def table(self, since: timedelta | None = None, channel_id: str | None = None) -> UsageTable:
        """Every channel's use of each model over the last `since` (default: this month so far), or one channel's."""
        end = self._clock()
        start = end - since if since is not None else period_start(Period.MONTH, end, self.tz)
        rows = await self._queries.totals(start, end, channel_id=channel_id)
        lines: dict[tuple[str, str, str], ModelLine] = {}
        for row in rows:
            key = (row.team_id, row.channel_id, row.model)
            lines[key] = lines.get(key, ModelLine(row.model)).plus(row)
        channel_cost: dict[tuple[str, str], Decimal] = {}
        for (team, channel, _), line in lines.items():
            channel_cost[team, channel] = channel_cost.get((team, channel), Decimal(0)) + line.cost_usd
        ordered = sorted(
            lines.items(),
            key=lambda item: (-channel_cost[item[0][:2]], item[0][0], item[0][1], -item[1].cost_usd, item[0][2]),
        )
        return UsageTable(
            start=start,
            end=end,
            lines=tuple((team, channel, line) for (team, channel, _), line in ordered),
            total=_sum(line for _, line in ordered),
        )


def _period(start: datetime, end: datetime, rows: Iterable[UsageTotals]) -> PeriodUsage:
    by_model: dict[str, ModelLine] = {}
    for row in rows:
        by_model[row.model] = by_model.get(row.model, ModelLine(row.model)).plus(row)
    models = tuple(sorted(by_model.values(), key=lambda m: (-m.cost_usd, -m.requests, m.model)))
    return PeriodUsage(start=start, end=end, models=models, total=_sum(models))


def _sum(lines: Iterable[ModelLine]) -> ModelLine:
    total = ModelLine("all models")
    for line in lines:
        total = total.plus(line)
    return total
