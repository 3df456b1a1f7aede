"""Block Kit for the cost digest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.catalog import describe, format_usd
from bot.ports.quota import Metric, QuotaUse
from bot.services.digest import Digest, DigestPeriod, Frequency, ModelUsage
from bot.slack import block_kit as kit
from bot.slack.block_kit import Block
from bot.slack.forecast_blocks import forecast_lines
from bot.slack.markup import escape

REASONS = {
    "rate_limit_exceeded": "rate limited",
    "insufficient_quota": "out of OpenAI credit",
    "model_not_found": "model not found or retired",
    "invalid_model": "model not found or retired",
    "context_length_exceeded": "input too long for the model",
    "server_error": "OpenAI server error",
    "timeout": "timed out",
    "connection_error": "could not connect",
    "auth_error": "API key refused",
    "bad_request": "request refused",
}


def digest_message(digest: Digest, names: Mapping[str, str], *, chart: bool) -> tuple[str, list[Block]]:
    """The digest's notification text and blocks; `names` maps user IDs to display names (plain text, shown as typed)."""
    tz = ZoneInfo(digest.timezone)
    label = period_label(digest.period, tz)
    title = f"{_title(digest.period)} · {label}"
    if digest.empty:
        line = f"No Frugal usage in <#{digest.channel_id}> {_span(digest.period)} ({label})."
        return line, [kit.section(line)]
    text = f"{title}: {format_usd(digest.cost_usd)} over {_requests(digest.requests)}"
    blocks: list[Block] = [
        kit.header(title),
        kit.context(f"<#{digest.channel_id}> · times in {digest.timezone}"),
        kit.fields(_summary(digest)),
        kit.section("*Cost by model*\n" + "\n".join(_model_line(digest, m) for m in digest.models)),
        kit.section(_fallbacks(digest)),
    ]
    if digest.quotas is not None:
        blocks.append(kit.section(_quotas(digest.quotas, tz)))
    if digest.forecasts:
        blocks.append(kit.section("\n".join(f"• {line}" for line in forecast_lines(list(digest.forecasts), tz))))
    if digest.top_users:
        # Names, not mentions: a digest must not ping its top users; and a name is whatever its owner typed.
        lines = [
            f"{i}. {escape(names.get(u.user_id, u.user_id))} — {format_usd(u.cost_usd)} ({_requests(u.requests)})"
            for i, u in enumerate(digest.top_users, 1)
        ]
        blocks.append(kit.section("*Top users by cost*\n" + "\n".join(lines)))
    if digest.lifecycle_warnings:
        blocks.append(kit.section("\n".join(f":warning: {escape(w)}" for w in digest.lifecycle_warnings)))
    blocks.append(kit.context(_energy(digest)))
    if chart:
        blocks.append(kit.context(f":bar_chart: Daily cost by model, last {len(digest.days)} days: in the thread."))
    return text, blocks


def period_label(period: DigestPeriod, tz: ZoneInfo) -> str:
    """The period's days for people, e.g. "Mon 3 – Sun 9 Nov 2025"."""
    first, last = period.first_day, period.last_day
    if first == last:
        label = _day(last, year=True)
    elif first.year != last.year:
        label = f"{_day(first, year=True)} – {_day(last, year=True)}"
    elif first.month != last.month:
        label = f"{_day(first)} – {_day(last, year=True)}"
    else:
        label = f"{first:%a} {first.day} – {_day(last, year=True)}"
    if not period.complete:
        label += f", until {period.end.astimezone(tz):%H:%M}"
    return label


def _title(period: DigestPeriod) -> str:
    if not period.complete:
        return "Cost so far today" if period.frequency is Frequency.DAILY else "Cost so far this week"
    return "Daily cost digest" if period.frequency is Frequency.DAILY else "Weekly cost digest"


def _span(period: DigestPeriod) -> str:
    if not period.complete:
        return "so far today" if period.frequency is Frequency.DAILY else "so far this week"
    return "that day" if period.frequency is Frequency.DAILY else "that week"


def _before(period: DigestPeriod) -> str:
    if not period.complete:
        return "the same time yesterday" if period.frequency is Frequency.DAILY else "the same time last week"
    return "the day before" if period.frequency is Frequency.DAILY else "the week before"


def _summary(digest: Digest) -> list[str]:
    before = _before(digest.period)
    cost = format_usd(digest.cost_usd)
    if digest.unpriced:
        cost += f" (+ {_requests(digest.unpriced)} at unknown price)"
    fields = [
        f"*Cost*\n{cost}\n{_change(digest.cost_usd, digest.previous_cost_usd, before, format_usd)}",
        f"*Requests*\n{digest.requests:,}\n"
        + _change(Decimal(digest.requests), Decimal(digest.previous_requests), before, lambda n: f"{n:,}"),
        f"*Tokens*\n{_count(digest.prompt_tokens)} in ({_count(digest.cached_tokens)} cached)"
        f" · {_count(digest.completion_tokens)} out",
        _savings(digest),
    ]
    return fields


def _change(now: Decimal, before: Decimal, when: str, show: Callable[[Decimal], str]) -> str:
    if before == 0:
        return f"none {when}" if now else f"none {when} either"
    percent = (now - before) / before * 100
    arrow = ":arrow_up_small:" if percent > 0 else ":arrow_down_small:" if percent < 0 else "="
    return f"{arrow} {abs(percent):.0f}% vs {when} ({show(before)})"


def _savings(digest: Digest) -> str:
    saved = digest.savings
    if saved is None:
        return "*Saved*\nunknown (no baseline price)"
    share = f" ({saved.saved_usd / saved.baseline_usd * 100:.0f}% less)" if saved.baseline_usd else ""
    return (
        f"*Saved vs `{saved.baseline_model}`*\n{format_usd(saved.saved_usd)}{share}\n"
        f"it would have cost {format_usd(saved.baseline_usd)}"
    )


def _model_line(digest: Digest, model: ModelUsage) -> str:
    cost = format_usd(model.cost_usd) if not model.unpriced else f"{format_usd(model.cost_usd)} + price unknown"
    share = f" ({model.requests / digest.requests:.0%})" if len(digest.models) > 1 else ""
    return f"• `{model.model}` — {cost} · {_requests(model.requests)}{share}"


def _fallbacks(digest: Digest) -> str:
    if digest.fallbacks:
        rate = digest.fallbacks / digest.requests if digest.requests else 0
        line = (
            f"*Fallbacks*: {digest.fallbacks:,} of {digest.requests:,} requests ({rate:.1%}) were answered "
            f"by another model than `{digest.primary_model}`."
        )
    elif digest.requests:
        line = f"*Fallbacks*: none — every request was answered by `{digest.primary_model}`."
    else:
        line = "*Fallbacks*: no request was answered."
    if digest.failures:
        reasons = ", ".join(f"{REASONS.get(code) or escape(code)} ×{n:,}" for code, n in digest.failures)
        line += f"\nFailed attempts: {reasons}."
    return line


def _quotas(quotas: tuple[QuotaUse, ...], tz: ZoneInfo) -> str:
    if not quotas:
        return "*Quota*: none set for this channel."
    lines = []
    for q in quotas:
        if q.metric is Metric.USD:
            amounts = f"{format_usd(q.used)} of {format_usd(q.limit)}"
        else:
            amounts = f"{_count(int(q.used))} of {_count(int(q.limit))} {q.metric.value}"
        used = f" ({q.used / q.limit:.0%})" if q.limit else ""
        lines.append(
            f"• {_scope(q)}, per {q.period.value}: {amounts} used{used}"
            f", resets {_day(q.resets_at.astimezone(tz).date())} {q.resets_at.astimezone(tz):%H:%M}"
        )
    return "*Quota*\n" + "\n".join(lines)


def _scope(quota: QuotaUse) -> str:
    return {"channel": "This channel", "default": "Workspace default"}.get(quota.scope, "Each user")


def _energy(digest: Digest) -> str:
    energy = digest.energy
    if energy is None or not energy.sources:
        return ":zap: Energy: unknown (no estimate for these models)."
    text = f":zap: Energy: {describe(energy.wh, '; '.join(energy.sources))}"
    if energy.missing:
        text += f"; {_requests(energy.missing)} on models without an estimate are not counted"
    return text + "."


def _requests(n: int) -> str:
    return f"{n:,} request" + ("" if n == 1 else "s")


def _count(n: int) -> str:
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{n:,}"


def _day(day: date, *, year: bool = False) -> str:
    return f"{day:%a} {day.day} {day:%b}" + (f" {day.year}" if year else "")
