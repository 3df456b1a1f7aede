"""What a digest says: the ledger's figures for a channel and period, summed in SQL, with quotas, energy and lifecycle."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.catalog import Catalog
from bot.ports.digest_queries import DigestQueries, UsageGroup, UserCost
from bot.ports.quota import QuotaReader, QuotaUse
from bot.services.digest_schedule import DAY, DigestPeriod, at_local
from bot.services.forecast import Forecast, forecasts

CHART_DAYS = 7
TOP_USERS = 5


@dataclass(frozen=True)
class ModelUsage:
    """Answered requests and cost of one model."""

    model: str
    requests: int
    cost_usd: Decimal
    unpriced: int


@dataclass(frozen=True)
class Savings:
    """What the requests cost against what the baseline model would have cost."""

    baseline_model: str
    baseline_usd: Decimal
    saved_usd: Decimal
    compared: int


@dataclass(frozen=True)
class Energy:
    """Estimated energy, the estimates' sources, and requests without an estimate."""

    wh: float
    sources: tuple[str, ...]
    missing: int


@dataclass(frozen=True)
class DayCost:
    """One local day's cost per model, for the chart."""

    day: date
    by_model: dict[str, Decimal]


@dataclass(frozen=True)
class Digest:
    """Everything a channel's digest says; no Slack here."""

    team_id: str
    channel_id: str
    period: DigestPeriod
    timezone: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    unpriced: int
    models: tuple[ModelUsage, ...]
    savings: Savings | None
    primary_model: str
    fallbacks: int
    failures: tuple[tuple[str, int], ...]
    quotas: tuple[QuotaUse, ...] | None
    top_users: tuple[UserCost, ...]
    energy: Energy | None
    lifecycle_warnings: tuple[str, ...]
    previous_requests: int
    previous_cost_usd: Decimal
    days: tuple[DayCost, ...]
    forecasts: tuple[Forecast, ...] = ()  # of the USD limits among quotas, when the digest was built

    @property
    def empty(self) -> bool:
        """True when nothing at all was asked of the models in the period."""
        return self.requests == 0 and not self.failures


LifecycleWarnings = Callable[[], Awaitable[list[str]]]


class DigestBuilder:
    """Builds a channel's digest for a period from the ledger, the quotas and the model lifecycle."""

    def __init__(
        self,
        queries: DigestQueries,
        catalog: Catalog,
        *,
        primary_model: str,
        baseline_model: str,
        tz: ZoneInfo,
        quotas: QuotaReader | None = None,
        lifecycle_warnings: LifecycleWarnings | None = None,
    ) -> None:
        self._queries = queries
        self._catalog = catalog
        self._primary = primary_model
        self._baseline = baseline_model
        self._tz = tz
        self._quotas = quotas
        self._lifecycle = lifecycle_warnings

    async def build(self, team_id: str, channel_id: str, period: DigestPeriod, now: datetime) -> Digest:
        """The digest of one channel for one period; `now` is when quota use is read."""
        prev_start, prev_end = period.previous(self._tz)
        chart_first = min(period.first_day, period.last_day - (CHART_DAYS - 1) * DAY)
        bounds = self._bounds(period, min(prev_start, at_local(chart_first, time(0), self._tz)), prev_end)
        groups = await self._queries.usage_groups(team_id, channel_id, bounds)
        top = await self._queries.top_users(team_id, channel_id, period.start, period.end, TOP_USERS)

        def within(g: UsageGroup, start: datetime, end: datetime) -> bool:
            return start <= bounds[g.bucket] and bounds[g.bucket + 1] <= end

        answered = [g for g in groups if g.ok and within(g, period.start, period.end)]
        failed = [g for g in groups if not g.ok and within(g, period.start, period.end)]
        before = [g for g in groups if g.ok and within(g, prev_start, prev_end)]
        quotas = await self._read_quotas(team_id, channel_id, now)
        return Digest(
            team_id=team_id,
            channel_id=channel_id,
            period=period,
            timezone=self._tz.key,
            requests=sum(g.rows for g in answered),
            prompt_tokens=sum(g.prompt_tokens for g in answered),
            cached_tokens=sum(g.cached_tokens for g in answered),
            completion_tokens=sum(g.completion_tokens for g in answered),
            cost_usd=sum((g.cost_usd for g in answered), Decimal(0)),
            unpriced=sum(g.unpriced for g in answered),
            models=_by_model(answered),
            savings=self._savings(answered),
            primary_model=self._primary,
            fallbacks=sum(g.rows for g in answered if g.model != self._primary),
            failures=_failures(failed),
            quotas=quotas,
            top_users=tuple(top),
            energy=self._energy(answered),
            lifecycle_warnings=tuple(await self._lifecycle()) if self._lifecycle else (),
            previous_requests=sum(g.rows for g in before),
            previous_cost_usd=sum((g.cost_usd for g in before), Decimal(0)),
            days=self._days(groups, bounds, chart_first, period.last_day),
            forecasts=tuple(forecasts(quotas or (), now)),
        )

    def _bounds(self, period: DigestPeriod, first: datetime, prev_end: datetime) -> list[datetime]:
        # Local midnights (DST-correct, computed here) split the window into day buckets for SQL.
        points = {first, period.start, prev_end, period.end}
        day = first.astimezone(self._tz).date()
        while (midnight := at_local(day, time(0), self._tz)) < period.end:
            points.add(midnight)
            day += DAY
        return sorted(p for p in points if first <= p <= period.end)

    def _savings(self, answered: list[UsageGroup]) -> Savings | None:
        compared = sum(g.compared for g in answered)
        if not compared:
            return None
        baseline = sum((g.compared_baseline_usd for g in answered), Decimal(0))
        cost = sum((g.compared_cost_usd for g in answered), Decimal(0))
        return Savings(self._baseline, baseline, baseline - cost, compared)

    def _energy(self, answered: list[UsageGroup]) -> Energy | None:
        if not answered:
            return None
        sources: list[str] = []
        for g in answered:
            info = self._catalog.get(g.model)
            if g.energy_missing < g.rows and info and info.energy and info.energy.source not in sources:
                sources.append(info.energy.source)
        return Energy(sum(g.energy_wh for g in answered), tuple(sources), sum(g.energy_missing for g in answered))

    def _days(self, groups: list[UsageGroup], bounds: list[datetime], first: date, last: date) -> tuple[DayCost, ...]:
        days = {first + i * DAY: defaultdict(Decimal) for i in range((last - first).days + 1)}
        for g in groups:
            day = bounds[g.bucket].astimezone(self._tz).date()
            if g.ok and day in days:
                days[day][g.model] += g.cost_usd
        return tuple(DayCost(day, dict(costs)) for day, costs in days.items())

    async def _read_quotas(self, team_id: str, channel_id: str, now: datetime) -> tuple[QuotaUse, ...] | None:
        if self._quotas is None:
            return None
        return tuple(await self._quotas.channel_quotas(team_id, channel_id, now))


def _by_model(answered: list[UsageGroup]) -> tuple[ModelUsage, ...]:
    totals: dict[str, list] = defaultdict(lambda: [0, Decimal(0), 0])
    for g in answered:
        t = totals[g.model]
        t[0] += g.rows
        t[1] += g.cost_usd
        t[2] += g.unpriced
    models = [ModelUsage(model, n, cost, unpriced) for model, (n, cost, unpriced) in totals.items()]
    return tuple(sorted(models, key=lambda m: (-m.cost_usd, -m.requests, m.model)))


def _failures(failed: list[UsageGroup]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = defaultdict(int)
    for g in failed:
        counts[g.error_code or "unknown"] += g.rows
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
