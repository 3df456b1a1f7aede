"""Quota limits as people type them ("200 requests/day", "$5/month"), and the periods they count over."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from bot.catalog import format_usd
from bot.ports.quota import Metric, Period
from bot.services.errors import InvalidInput

# Upper bounds keep amounts inside the database columns and catch typos ("5000000 usd").
MAX_AMOUNT = {Metric.REQUESTS: Decimal(10**9), Metric.TOKENS: Decimal(10**12), Metric.USD: Decimal(10**6)}
USD_PLACES = 6

_UNITS = {
    "request": Metric.REQUESTS,
    "requests": Metric.REQUESTS,
    "token": Metric.TOKENS,
    "tokens": Metric.TOKENS,
    "usd": Metric.USD,
}
_PERIODS = {p.value: p for p in Period}
_SUFFIX = {"k": Decimal(1_000), "m": Decimal(1_000_000)}
# Digits are ASCII digits; a comma only separates thousands ("1,000", not "1,,0" or "1,0").
_NUMBER = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
# "<N>[k|m] <unit>/<period>" or "$<N>/<period>", spaces allowed around the slash.
_LIMIT = re.compile(
    r"^(?:\$\s*(?P<dollars>[0-9][0-9,]*(?:\.[0-9]+)?)"
    r"|(?P<number>[0-9][0-9,]*(?:\.[0-9]+)?)\s*(?P<suffix>[km])?\s*(?P<unit>[a-z]+))"
    r"\s*/\s*(?P<period>[a-z]+)$",
    re.IGNORECASE,
)


class InvalidLimit(InvalidInput):
    """A quota limit that cannot be understood or is out of range."""


@dataclass(frozen=True)
class Limit:
    """An amount of one metric per period."""

    amount: Decimal
    metric: Metric
    period: Period

    def __str__(self) -> str:
        return f"{format_amount(self.metric, self.amount)} per {self.period.value}"


def parse_limit(text: str) -> Limit:
    """Parse "200 requests/day", "100k tokens/week", "1.5 usd/week" or "$5/month"; raises InvalidLimit."""
    match = _LIMIT.match(text.strip())
    if not match:
        raise InvalidLimit(f"`{text.strip()}` is not a limit like `200 requests/day` or `$5/month`.")
    period = _PERIODS.get(match["period"].lower())
    if period is None:
        raise InvalidLimit(f"`{match['period']}` is not a period: use day, week or month.")
    if match["dollars"] is not None:
        metric, number, suffix = Metric.USD, match["dollars"], None
    else:
        metric = _UNITS.get(match["unit"].lower())
        if metric is None:
            raise InvalidLimit(f"`{match['unit']}` is not a unit: use requests, tokens or usd.")
        number, suffix = match["number"], match["suffix"]
    return Limit(_amount(number, suffix, metric), metric, period)


def parse_metric_period(text: str) -> tuple[Metric, Period]:
    """Parse "requests/day" (as in `quota clear here requests/day`); raises InvalidLimit."""
    unit, slash, period_word = text.strip().lower().partition("/")
    metric, period = _UNITS.get(unit.strip()), _PERIODS.get(period_word.strip())
    if not slash or metric is None or period is None:
        raise InvalidLimit(f"`{text.strip()}` is not like `requests/day` or `usd/month`.")
    return metric, period


def _amount(number: str, suffix: str | None, metric: Metric) -> Decimal:
    if not _NUMBER.fullmatch(number):
        raise InvalidLimit(f"`{number}` is not a number: commas may only separate thousands, as in `1,000`.")
    try:
        amount = Decimal(number.replace(",", "")) * _SUFFIX.get((suffix or "").lower(), Decimal(1))
    except InvalidOperation:
        raise InvalidLimit(f"`{number}` is not a number.") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidLimit("A limit must be more than zero.")
    if amount > MAX_AMOUNT[metric]:
        raise InvalidLimit(f"A limit can be at most {format_amount(metric, MAX_AMOUNT[metric])}.")
    if metric is Metric.USD:
        if amount != amount.quantize(Decimal(1).scaleb(-USD_PLACES)):
            raise InvalidLimit(f"A USD limit can have at most {USD_PLACES} decimal places.")
    elif amount != amount.to_integral_value():
        raise InvalidLimit(f"A number of {metric.value} must be a whole number.")
    return amount.normalize() if metric is Metric.USD else amount.to_integral_value()


def format_amount(metric: Metric, amount: Decimal) -> str:
    """'$5.00', '200 requests', '1,000,000 tokens'."""
    if metric is Metric.USD:
        return format_usd(amount)
    count = int(amount)
    noun = metric.value if count != 1 else metric.value.removesuffix("s")
    return f"{count:,} {noun}"


# --- periods, counted in FRUGAL_TIMEZONE -------------------------------------------------------


def period_start(period: Period, at: datetime, tz: ZoneInfo) -> datetime:
    """Start (UTC) of the period containing `at`: local midnight, Monday, or the 1st of the month."""
    return _local_midnight(_first_day(period, at.astimezone(tz).date()), tz)


def next_period_start(period: Period, at: datetime, tz: ZoneInfo) -> datetime:
    """Start (UTC) of the period after the one containing `at`, i.e. when a quota resets."""
    first = _first_day(period, at.astimezone(tz).date())
    if period is Period.DAY:
        following = first + timedelta(days=1)
    elif period is Period.WEEK:
        following = first + timedelta(days=7)
    else:
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return _local_midnight(following, tz)


def period_starts(at: datetime, tz: ZoneInfo) -> dict[Period, datetime]:
    """The start of every period containing `at`."""
    return {period: period_start(period, at, tz) for period in Period}


def _first_day(period: Period, day: date) -> date:
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # Where a DST change skips midnight, zoneinfo maps it to the first instant of the day.
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)
