"""Block Kit for the App Home tab."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.catalog import format_usd
from bot.ports.model_status import ModelHealth
from bot.services.digest import Subscription
from bot.services.home import ChannelSetup, ChannelUsage, HomeView
from bot.slack import block_kit as kit
from bot.slack import quota_blocks
from bot.slack.block_kit import Block
from bot.slack.forecast_blocks import forecast_line, forecast_lines

# One section holds 3,000 characters: about this many channel lines.
CHANNELS_SHOWN = 25
# About 200 characters each, within the same 3,000.
FORECASTS_SHOWN = 12


def home_view(view: HomeView, tz: ZoneInfo, *, channels_note: str | None = None) -> dict[str, Any]:
    """The Home tab: the user's channels, the models' health and, for admins, every channel's setup."""
    month = view.period_start.astimezone(tz).strftime("%B %Y")
    blocks: list[Block] = [
        kit.header(f"Frugal · {month}"),
        kit.context(f"Usage since {_day(view.period_start, tz)} ({tz.key}). Type `/frugal help` for every command."),
        kit.section("*Your channels this month*\n" + _channel_lines(view.channels)),
    ]
    if channels_note:
        blocks.append(kit.context(channels_note))
    if view.forecasts:
        lines = [f"• <#{channel}> — {forecast_line(f, tz)}" for channel, f in view.forecasts[:FORECASTS_SHOWN]]
        blocks.append(
            kit.section("*Forecasts* (a straight line through this period's spend so far)\n" + "\n".join(lines))
        )
    blocks += [kit.divider(), kit.section("*Models*\n" + _model_lines(view.models, tz))]
    if view.admin is not None:
        blocks += [kit.divider(), kit.section("*Every channel* (admins only)")]
        if not view.admin:
            blocks.append(kit.section("No channel has used Frugal or subscribed to a digest this month."))
        blocks += [kit.section(_setup_text(setup, tz, view.digests_known)) for setup in view.admin]
        if view.admin_hidden:
            blocks.append(
                kit.context(f"…and {view.admin_hidden} more channels; `/frugal quota show #channel` for one.")
            )
    return {"type": "home", "blocks": blocks}


def _channel_lines(channels: tuple[ChannelUsage, ...]) -> str:
    if not channels:
        return "No Frugal use in your channels this month yet."
    lines = [f"• <#{u.channel_id}> — {usage_text(u)}" for u in channels[:CHANNELS_SHOWN]]
    if len(channels) > CHANNELS_SHOWN:
        lines.append(f"…and {len(channels) - CHANNELS_SHOWN} more")
    return "\n".join(lines)


def usage_text(usage: ChannelUsage) -> str:
    """'3 requests · 1,200 tokens · $0.0012' (and how many had no known price)."""
    text = f"{_count(usage.requests, 'request')} · {usage.tokens:,} tokens · {format_usd(usage.cost_usd)}"
    if usage.unpriced:
        text += f" (+{usage.unpriced} at unknown prices)"
    return text


def _model_lines(models: tuple[ModelHealth, ...] | None, tz: ZoneInfo) -> str:
    if models is None:
        return "Model health is not available."
    lines = []
    for position, health in enumerate(models):
        role = "primary" if position == 0 else "fallback"
        line = f"{_state_icon(health.state)} `{health.model}` ({role}) — {health.state}"
        if health.reason:
            line += f": {health.reason}"
        if health.until:
            line += f" (until {_when(health.until, tz)})"
        lines.append(line)
    return "\n".join(lines)


def _setup_text(setup: ChannelSetup, tz: ZoneInfo, digests_known: bool) -> str:
    usage = usage_text(setup.usage) if setup.usage else "no use this month"
    lines = [f"*<#{setup.channel_id}>* — {usage}"]
    if setup.quotas is not None:
        lines += [f"Quota: {quota_blocks.use_line(q)}" for q in setup.quotas] or ["Quota: none"]
        lines += forecast_lines(list(setup.forecasts), tz)
    if digests_known:
        lines.append(f"Digest: {digest_text(setup.digest, tz)}")
    return "\n".join(lines)


def digest_text(subscription: Subscription | None, tz: ZoneInfo) -> str:
    """'daily at 09:00 (Europe/Paris)', or 'off'."""
    if subscription is None:
        return "off"
    return f"{subscription.frequency.value} at {subscription.send_time:%H:%M} ({tz.key})"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _state_icon(state: str) -> str:
    return ":large_green_circle:" if state == "healthy" else ":large_orange_circle:"


def _when(instant: datetime, tz: ZoneInfo) -> str:
    # Slack shows the date in each reader's own zone; the fallback text uses FRUGAL_TIMEZONE.
    fallback = instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return f"<!date^{int(instant.timestamp())}^{{date_short}} {{time}}|{fallback}>"


def _day(instant: datetime, tz: ZoneInfo) -> str:
    # Plain text on purpose: the month is counted in FRUGAL_TIMEZONE, not in each reader's zone.
    local = instant.astimezone(tz)
    return f"{local.day} {local:%B %Y}"
