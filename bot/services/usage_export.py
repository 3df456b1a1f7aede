"""Usage exports: one row per day (in FRUGAL_TIMEZONE) × channel × user × model, as CSV or JSON Lines,
with FinOps FOCUS column names where FOCUS has one and x_-prefixed names for Frugal's own."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.ports.quota import Period
from bot.ports.usage_export import BucketUsage, UsageExportQueries
from bot.services.quota_spec import next_period_start, period_start
from bot.services.usage import utcnow

# The columns, in order. FOCUS names: ChargePeriodStart/End (UTC), costs in BillingCurrency, ResourceId = the
# model, SubAccountId = the Slack workspace; everything Frugal adds carries FOCUS's x_ prefix for custom columns.
COLUMNS = (
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "BillingCurrency",
    "BilledCost",
    "EffectiveCost",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ResourceId",
    "SubAccountId",
    "x_Date",
    "x_ChannelId",
    "x_UserId",
    "x_Requests",
    "x_PromptTokens",
    "x_CachedTokens",
    "x_CacheWriteTokens",
    "x_CompletionTokens",
    "x_ReasoningTokens",
    "x_BaselineCost",
    "x_UnpricedRequests",
    "x_FailedAttempts",
)


@dataclass(frozen=True)
class ExportRow:
    """One day's use of one model by one user in one channel."""

    day: date  # in FRUGAL_TIMEZONE
    period_start: datetime  # UTC; the day's first instant, or the window's start when that is later
    period_end: datetime  # UTC, exclusive; the next day's first instant, or the window's end when that is sooner
    usage: BucketUsage

    @property
    def cost_usd(self) -> Decimal | None:
        """The answered requests' cost; None when one of them had no known price (never a made-up 0)."""
        return self.usage.cost_usd if self.usage.unpriced == 0 else None

    @property
    def baseline_usd(self) -> Decimal | None:
        """What the answered requests would have cost on the baseline model; None when that is not known for all."""
        return self.usage.baseline_usd if self.usage.baseline_unknown == 0 else None


@dataclass(frozen=True)
class UsageExport:
    """The rows of one window [start, end), day by day."""

    start: datetime
    end: datetime
    tz: ZoneInfo
    rows: tuple[ExportRow, ...]


class UsageExporter:
    """Reads the ledger day by day for exports; knows nothing of Slack or terminals."""

    def __init__(self, queries: UsageExportQueries, tz: ZoneInfo, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._queries = queries
        self.tz = tz
        self._clock = clock

    async def recent(self, since: timedelta | None = None, channel_id: str | None = None) -> UsageExport:
        """The last `since` (default: this month so far), every channel or one."""
        end = self._clock()
        start = end - since if since is not None else period_start(Period.MONTH, end, self.tz)
        return await self._export(start, end, channel_id)

    async def month(self, month: date | None = None) -> UsageExport:
        """The calendar month containing `month` (default: this one), up to now."""
        now = self._clock()
        first = month or now.astimezone(self.tz).date()
        anchor = datetime(first.year, first.month, 15, tzinfo=self.tz)
        start = period_start(Period.MONTH, anchor, self.tz)
        return await self._export(start, min(next_period_start(Period.MONTH, anchor, self.tz), now), None)

    async def _export(self, start: datetime, end: datetime, channel_id: str | None) -> UsageExport:
        bounds = day_bounds(start, end, self.tz)
        usage = await self._queries.bucket_usage(bounds, channel_id=channel_id) if len(bounds) > 1 else []
        rows = sorted(
            (
                ExportRow(bounds[u.bucket].astimezone(self.tz).date(), bounds[u.bucket], bounds[u.bucket + 1], u)
                for u in usage
            ),
            key=lambda r: (r.period_start, r.usage.team_id, r.usage.channel_id, r.usage.user_id, r.usage.model),
        )
        return UsageExport(start=start, end=end, tz=self.tz, rows=tuple(rows))


def day_bounds(start: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
    """[start, every local midnight after it and before end, end]; just [start] for an empty window."""
    if end <= start:
        return [start]
    bounds = [start]
    while (midnight := next_period_start(Period.DAY, bounds[-1], tz)) < end:
        bounds.append(midnight)
    return [*bounds, end]


def records(export: UsageExport) -> list[dict[str, str | int | None]]:
    """The rows as column → value: counts as integers, money as exact decimal strings, None when unknown."""
    return [_record(row) for row in export.rows]


def to_csv(export: UsageExport) -> str:
    """The rows as CSV (RFC 4180) with a header line; an unknown cost is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for record in records(export):
        writer.writerow(["" if record[c] is None else record[c] for c in COLUMNS])
    return out.getvalue()


def to_json_lines(export: UsageExport) -> str:
    """The rows as JSON Lines: one object per line, keyed by the CSV's column names; an unknown cost is null."""
    return "".join(json.dumps(record) + "\n" for record in records(export))


def _record(row: ExportRow) -> dict[str, str | int | None]:
    u = row.usage
    cost = _money(row.cost_usd)
    return {
        "ChargePeriodStart": _instant(row.period_start),
        "ChargePeriodEnd": _instant(row.period_end),
        "ChargeCategory": "Usage",
        "BillingCurrency": "USD",
        "BilledCost": cost,
        "EffectiveCost": cost,  # no commitments or credits to spread: what is billed is what it cost
        "ConsumedQuantity": u.prompt_tokens + u.completion_tokens,
        "ConsumedUnit": "Tokens",
        "ResourceId": u.model,
        "SubAccountId": u.team_id,
        "x_Date": row.day.isoformat(),
        "x_ChannelId": u.channel_id,
        "x_UserId": u.user_id,
        "x_Requests": u.requests,
        "x_PromptTokens": u.prompt_tokens,
        "x_CachedTokens": u.cached_tokens,
        "x_CacheWriteTokens": u.cache_write_tokens,
        "x_CompletionTokens": u.completion_tokens,
        "x_ReasoningTokens": u.reasoning_tokens,
        "x_BaselineCost": _money(row.baseline_usd),
        "x_UnpricedRequests": u.unpriced,
        "x_FailedAttempts": u.failed,
    }


def _money(amount: Decimal | None) -> str | None:
    # Exact, without exponent or trailing zeros: 0.000330000 → "0.00033", 0E-9 → "0".
    return None if amount is None else f"{amount.normalize():f}"


def _instant(instant: datetime) -> str:
    # FOCUS date/times are UTC; a fraction of a second is kept where the window starts or ends inside one.
    text = instant.astimezone(ZoneInfo("UTC")).replace(tzinfo=None).isoformat()
    return f"{text}Z"
