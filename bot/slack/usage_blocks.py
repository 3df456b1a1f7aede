"""Block Kit for /usage: this month and today so far, by model, and the quotas that apply."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.catalog import format_usd
from bot.services.usage import ChannelReport, ModelLine, PeriodUsage
from bot.slack import block_kit as kit
from bot.slack import quota_blocks
from bot.slack.block_kit import Block
from bot.slack.forecast_blocks import forecast_lines


def usage_report(report: ChannelReport) -> list[Block]:
    """The ephemeral /usage answer."""
    tz = report.tz
    month = report.month.start.astimezone(tz)
    blocks: list[Block] = [
        kit.section(f"*Frugal usage of <#{report.channel_id}>* — {month:%B %Y} so far"),
        kit.section(f"*This month* (since {_day(report.month.start, tz)})\n" + _period_text(report.month)),
        kit.section(f"*Today* (since {_day(report.today.start, tz)} 00:00)\n" + _period_text(report.today)),
    ]
    if report.quotas:
        lines = "\n".join(f"• {quota_blocks.use_line(use)}" for use in report.quotas)
        blocks.append(kit.section(f"*Quotas*\n{lines}"))
    else:
        blocks.append(kit.section("*Quotas*\nNo quota applies to this channel."))
    if report.mine:
        # Only the one asking sees this (the answer is ephemeral): their own spend counts in every channel.
        lines = "\n".join(f"• {quota_blocks.use_line(use)}" for use in report.mine)
        blocks.append(kit.section(f"*Your limits* (in every channel)\n{lines}"))
    if report.forecasts:
        blocks.append(kit.section("\n".join(f"• {line}" for line in forecast_lines(list(report.forecasts), tz))))
    note = (
        f"Days and months are counted in {tz.key}. Only answered requests are charged; "
        "costs are exact API prices, savings compare the same tokens on the baseline model."
    )
    if report.forecasts:
        note += " Forecasts draw a straight line through this period's spend so far."
    blocks.append(kit.context(note))
    return blocks


def summary_text(report: ChannelReport) -> str:
    """The plain-text fallback: this month's requests and cost."""
    total = report.month.total
    return f"This channel this month: {_count(total.requests, 'request')}, {_cost(total)}."


def _period_text(period: PeriodUsage) -> str:
    total = period.total
    if not total.requests and not total.failed:
        return "No requests."
    lines = [f"{_count(total.requests, 'request')} · {_tokens(total)} · *{_cost(total)}*"]
    if len(period.models) > 1 or (period.models and period.models[0].requests != total.requests):
        lines += [f"• `{m.model}` — {_count(m.requests, 'request')} · {_tokens(m)} · {_cost(m)}" for m in period.models]
    elif period.models:
        lines[0] = f"`{period.models[0].model}`: " + lines[0]
    extras = []
    if total.failed:
        extras.append(f"{_count(total.failed, 'failed attempt')}, not charged")
    savings = total.savings_usd
    if savings is not None and savings > 0:
        extras.append(f"saved {format_usd(savings)} against the baseline model")
    if extras:
        note = "; ".join(extras)
        lines.append(f"_{note[0].upper()}{note[1:]}_")
    return "\n".join(lines)


def _tokens(line: ModelLine) -> str:
    return f"{line.prompt_tokens:,} tokens in ({line.cached_tokens:,} cached), {line.completion_tokens:,} out"


def _cost(line: ModelLine) -> str:
    if line.cost_known:
        return format_usd(line.cost_usd)
    if line.unpriced == line.requests:
        return "price unknown"
    return f"{format_usd(line.cost_usd)} + {_count(line.unpriced, 'request')} at an unknown price"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _day(instant: datetime, tz: ZoneInfo) -> str:
    # Plain text on purpose: periods are counted in FRUGAL_TIMEZONE, not in each reader's zone.
    local = instant.astimezone(tz)
    return f"{local.day} {local:%b}"
