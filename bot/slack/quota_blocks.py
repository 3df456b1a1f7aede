"""How quotas read in Slack: limits, use, headroom and reset times (as Slack dates in each reader's zone)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from bot.ports.quota import Metric, QuotaUse
from bot.ports.quota_store import LimitRecord, Scope
from bot.services.quota_spec import format_amount
from bot.slack import block_kit as kit
from bot.slack.block_kit import Block

# A quota's owner, as it reads after "the limit of …" / at the end of a line.
_OWNERS = {Scope.CHANNEL.value: "this channel's own", Scope.DEFAULT.value: "workspace default", Scope.USER.value: "your own"}


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
    """'this channel's own', 'workspace default' or 'your own'."""
    return _OWNERS.get(use.scope, use.scope)


def use_line(use: QuotaUse) -> str:
    """'$0.40 of $5.00 per month used · $4.60 left · resets <date> (this channel's own)'."""
    used = amount(use.metric, use.used) if use.metric is Metric.USD else f"{int(use.used):,}"
    return (
        f"{used} of {per_period(use.metric, use.limit, use.period.value)} used · "
        f"*{amount(use.metric, use.remaining)} left* · resets {slack_date(use.resets_at)} _({owner(use)})_"
    )


def channel_quotas(channel_id: str, uses: list[QuotaUse], tz_name: str) -> list[Block]:
    """`/frugal quota show here|#channel`: every limit that applies to the channel, with its use."""
    if not uses:
        return [kit.section(
            f"No quota applies to <#{channel_id}>: it may use Frugal without limit. "
            "An admin sets one with `/frugal quota set here $5/month` (or `200 requests/day`, `100k tokens/week`)."
        )]
    lines = "\n".join(f"• {use_line(use)}" for use in uses)
    return [
        kit.section(f"*Quotas of <#{channel_id}>*\n{lines}"),
        kit.context(f"Days, weeks (from Monday) and months are counted in {tz_name}. The tightest limit decides."),
    ]


def default_limits(limits: list[LimitRecord], tz_name: str) -> list[Block]:
    """`/frugal quota show default`: the workspace default limits (each channel counts its own use)."""
    if not limits:
        return [kit.section("The workspace has no default quota: channels without their own limit are unlimited.")]
    lines = "\n".join(f"• {per_period(r.metric, r.amount, r.period.value)}" for r in limits)
    return [
        kit.section(f"*Workspace default quotas* — each channel without its own limit of that kind gets:\n{lines}"),
        kit.context(f"Each channel's use counts against its own copy of the default, in {tz_name}."),
    ]
