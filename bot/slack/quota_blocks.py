"""How quotas read in Slack: limits, use, headroom and reset times (as Slack dates in each reader's zone)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from bot.ports.quota import DEFAULT_ALERTS, Metric, Mode, QuotaUse
from bot.ports.quota_store import LimitRecord, Scope
from bot.services.quota_spec import format_amount
from bot.slack import block_kit as kit
from bot.slack.block_kit import Block

# A quota's owner, as it reads after "the limit of …" / at the end of a line.
_OWNERS = {
    Scope.CHANNEL.value: "this channel's own",
    Scope.DEFAULT.value: "workspace default",
    Scope.USER.value: "your own",
}


def slack_date(instant: datetime) -> str:
    """A Slack date token: shown in each reader's own time zone, with a UTC fallback for old clients."""
    fallback = instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(instant.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def amount(metric: Metric, value: Decimal) -> str:
    """'$4.60', '188 requests', '1 request', '99,500 tokens'."""
    return format_amount(metric, value)


def per_period(metric: Metric, limit: Decimal, period_word: str) -> str:
    """'$5.00 per month', '200 requests per day'."""
    return f"{amount(metric, limit)} per {period_word}"


def owner(use: QuotaUse) -> str:
    """'this channel's own', 'workspace default', 'your own' or 'per-person default'."""
    if use.scope == Scope.USER.value and not use.target:
        return "per-person default"
    return _OWNERS.get(use.scope, use.scope)


def alerts_words(alerts: tuple[int, ...]) -> str:
    """'alerts at 80 % and 100 %' or 'no alerts'."""
    if not alerts:
        return "no alerts"
    shares = [f"{pct} %" for pct in alerts]
    return "alerts at " + (shares[0] if len(shares) == 1 else ", ".join(shares[:-1]) + " and " + shares[-1])


def options_words(mode: Mode, alerts: tuple[int, ...], downgrade: int | None) -> str:
    """'warn only · alerts at 80 % and 100 %' / 'cheapest model past 90 % · no alerts' / 'alerts at …'."""
    words = []
    if mode is Mode.WARN:
        words.append("warn only")
    if downgrade is not None:
        words.append(f"cheapest model past {downgrade} %")
    words.append(alerts_words(alerts))
    return " · ".join(words)


def options_sentence(mode: Mode, alerts: tuple[int, ...], downgrade: int | None) -> str:
    """How a limit's options read after it is set."""
    first = (
        "It never refuses, only alerts"
        if mode is Mode.WARN
        else f"Past {downgrade} % requests go to the cheapest model that fits"
        if downgrade is not None
        else "Requests that do not fit are refused"
    )
    alerting = (
        "no alerts are sent"
        if not alerts
        else f"the channel (or the person) and the admins are told at {alerts_words(alerts)[len('alerts at ') :]}"
    )
    return f"{first}; {alerting}."


def use_line(use: QuotaUse, *, whose: str | None = None) -> str:
    """'$0.40 of $5.00 per month used · $4.60 left · resets <date> (this channel's own)'."""
    used = amount(use.metric, use.used) if use.metric is Metric.USD else f"{int(use.used):,}"
    extra = (
        ""
        if (use.mode, use.alerts, use.downgrade) == (Mode.HARD, DEFAULT_ALERTS, None)
        else (f" · {options_words(use.mode, use.alerts, use.downgrade)}")
    )
    return (
        f"{used} of {per_period(use.metric, use.limit, use.period.value)} used · "
        f"*{amount(use.metric, use.remaining)} left* · resets {slack_date(use.resets_at)}{extra} "
        f"_({whose or owner(use)})_"
    )


def channel_quotas(channel_id: str, uses: list[QuotaUse], tz_name: str) -> list[Block]:
    """`/frugal quota show here|#channel`: every limit that applies to the channel, with its use."""
    if not uses:
        return [
            kit.section(
                f"No quota applies to <#{channel_id}>: it may use Frugal without limit. "
                "An admin sets one with `/frugal quota set here $5/month` (or `200 requests/day`, `100k tokens/week`)."
            )
        ]
    lines = "\n".join(f"• {use_line(use)}" for use in uses)
    return [
        kit.section(f"*Quotas of <#{channel_id}>*\n{lines}"),
        kit.context(f"Days, weeks (from Monday) and months are counted in {tz_name}. The tightest limit decides."),
    ]


def user_quotas(user_id: str, uses: list[QuotaUse], tz_name: str) -> list[Block]:
    """`/frugal quota show @user`: the per-person limits that apply to someone, with their use in every channel."""
    if not uses:
        return [
            kit.section(
                f"No per-person quota applies to <@{user_id}> (channel quotas still do). "
                "An admin sets one with `/frugal quota set @person 50 requests/day` or `set default-user $1/day`."
            )
        ]
    lines = "\n".join(f"• {use_line(use, whose='their own' if use.target else 'per-person default')}" for use in uses)
    return [
        kit.section(f"*Quotas of <@{user_id}>* (their use in every channel)\n{lines}"),
        kit.context(f"Counted in {tz_name}. Channel quotas apply too; the tightest limit decides."),
    ]


def default_limits(limits: list[LimitRecord], tz_name: str, *, per_person: bool = False) -> list[Block]:
    """`/frugal quota show default|default-user`: the workspace defaults (each channel or person counts its own)."""
    who = "person" if per_person else "channel"
    if not limits:
        return [
            kit.section(
                f"The workspace has no {'per-person ' if per_person else ''}default quota: "
                f"{who}s without their own limit are unlimited."
            )
        ]
    lines = "\n".join(f"• {_record_line(r)}" for r in limits)
    title = "Per-person default quotas" if per_person else "Workspace default quotas"
    return [
        kit.section(f"*{title}* — each {who} without its own limit of that kind gets:\n{lines}"),
        kit.context(f"Each {who}'s use counts against its own copy of the default, in {tz_name}."),
    ]


def _record_line(record: LimitRecord) -> str:
    line = per_period(record.metric, record.amount, record.period.value)
    if (record.mode, record.alerts, record.downgrade) == (Mode.HARD, DEFAULT_ALERTS, None):
        return line
    return f"{line} · {options_words(record.mode, record.alerts, record.downgrade)}"
