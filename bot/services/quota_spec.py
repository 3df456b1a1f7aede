"""Quota limits as people type them ("200 requests/day", "$5/month"), and the periods they count over."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from bot.catalog import format_usd
from bot.ports.quota import DEFAULT_ALERTS, Metric, Mode, Period
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
    mode: Mode = Mode.HARD
    alerts: tuple[int, ...] = DEFAULT_ALERTS  # ascending percentages of the limit; () for none
    downgrade: int | None = None  # past this percentage, only the cheapest model is used

    def __str__(self) -> str:
        return f"{format_amount(self.metric, self.amount)} per {self.period.value}"


_OPTIONS = ("warn", "hard", "alert", "alerts", "downgrade")
_PERCENT = re.compile(r"^([0-9]{1,3})%?$")
OPTIONS_USAGE = "`warn`, `alert 50,80,100`, `alert off` or `downgrade 90%`"


def parse_setting(text: str) -> Limit:
    """Parse "<N> <unit>/<period> [warn] [alert P,P,…|alert off] [downgrade P%]"; raises InvalidLimit."""
    words = text.split()
    first_option = next((i for i, word in enumerate(words) if word.lower() in _OPTIONS), len(words))
    if first_option == 0:
        raise InvalidLimit("Give the limit first, e.g. `$5/month warn` or `200 requests/day alert 50,80,100`.")
    amount_words = words[:first_option]
    # The amount may be followed by a word that is no option ("$5/month soon"): find where it ends.
    for end in range(len(amount_words), 0, -1):
        if _LIMIT.match(" ".join(amount_words[:end])):
            limit = parse_limit(" ".join(amount_words[:end]))
            return _options(limit, words[end:])
    return parse_limit(" ".join(amount_words))  # raises, saying what is wrong with it


def _options(limit: Limit, words: list[str]) -> Limit:
    seen: set[str] = set()
    mode, alerts, downgrade = Mode.HARD, DEFAULT_ALERTS, None
    i = 0
    while i < len(words):
        word = words[i].lower()
        kind = "alert" if word == "alerts" else "mode" if word in ("warn", "hard") else word
        if kind not in ("mode", "alert", "downgrade"):
            raise InvalidLimit(f"`{_echo(words[i])}` is not a quota option: use {OPTIONS_USAGE}.")
        if kind in seen:
            raise InvalidLimit(f"`{kind if kind != 'mode' else word}` is given twice; say it once.")
        seen.add(kind)
        if kind == "mode":
            mode = Mode(word)
            i += 1
            continue
        values: list[str] = []
        i += 1
        while i < len(words) and words[i].lower() not in _OPTIONS:
            values.append(words[i])
            i += 1
        if kind == "alert":
            alerts = _alert_list(" ".join(values))
        else:
            downgrade = _downgrade_share(values)
    if mode is Mode.WARN and downgrade is not None:
        raise InvalidLimit(
            "A `warn` limit never refuses, so it has nothing to downgrade instead of: use `warn` or `downgrade`, not both."
        )
    return replace(limit, mode=mode, alerts=alerts, downgrade=downgrade)


def _alert_list(text: str) -> tuple[int, ...]:
    if text.strip().lower() == "off":
        return ()
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise InvalidLimit("`alert` needs percentages separated by commas, like `alert 50,80,100`, or `alert off`.")
    shares = []
    for part in parts:
        match = _PERCENT.match(part)
        if not match or not 1 <= int(match.group(1)) <= 100:
            raise InvalidLimit(
                f"`{_echo(part)}` is not an alert percentage: each must be a whole number from 1 to 100, "
                "like `alert 50,80,100`."
            )
        shares.append(int(match.group(1)))
    return tuple(sorted(set(shares)))


def _downgrade_share(values: list[str]) -> int:
    match = _PERCENT.match("".join(values)) if values else None
    if not match or not 1 <= int(match.group(1)) <= 99:
        given = f"`{_echo(' '.join(values))}` is not" if values else "`downgrade` needs"
        raise InvalidLimit(f"{given} a share of the limit: a whole percentage from 1 to 99, like `downgrade 90%`.")
    return int(match.group(1))


def _echo(word: str) -> str:
    # Echo only plain words: anything else could be markup such as <!channel>.
    return word if re.fullmatch(r"[A-Za-z0-9_.,%$/-]{1,30}", word) else "that"


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
