"""/frugal quota set|show|clear: admins cap a channel, a person, or each by default, per day, week or month."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from bot.ports.quota import Metric, Period
from bot.ports.quota_store import Scope
from bot.services.errors import InvalidInput
from bot.services.quota_spec import Limit, parse_metric_period, parse_setting
from bot.slack import quota_blocks
from bot.slack.grammar import QUOTA_USAGE, SLACK_ID_LIMIT
from bot.slack.markup import defuse

if TYPE_CHECKING:  # frugal.py imports this module for its SUBCOMMANDS table
    from bot.slack.listeners.frugal import FrugalRequest

# With should_escape on, Slack sends a picked channel as <#C123|name> (or <#C123> when it has no name to show).
_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")
# A picked person arrives as <@U123|name> (or <@U123>).
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


class BadQuotaArgs(InvalidInput):
    """The words after `/frugal quota` are not in its grammar."""


@dataclass(frozen=True)
class Target:
    """Whom a quota command is about: a channel, a person, or a workspace default (per channel or per person)."""

    scope: Scope
    channel_id: str  # the channel or user ID; "" for a workspace default

    @property
    def label(self) -> str:
        """How the target reads in a reply."""
        if self.scope is Scope.DEFAULT:
            return "the workspace default"
        if self.scope is Scope.DEFAULT_USER:
            return "the per-person default"
        if self.scope is Scope.USER:
            return f"<@{self.channel_id}>"
        return f"<#{self.channel_id}>"


@dataclass(frozen=True)
class QuotaArgs:
    """A parsed `/frugal quota` command."""

    action: str  # "set", "show" or "clear"
    target: Target
    limit: Limit | None = None  # set, and only set, has one
    only: tuple[Metric, Period] | None = None  # clear: just this metric and period


def parse_target(word: str, here: str) -> Target:
    """`here`, `default`, `default-user`, an escaped channel or an escaped person; raises BadQuotaArgs."""
    lowered = word.lower()
    if lowered == "here":
        return Target(Scope.CHANNEL, here)
    if lowered == "default":
        return Target(Scope.DEFAULT, "")
    if lowered in ("default-user", "default_user"):
        return Target(Scope.DEFAULT_USER, "")
    for pattern, scope, kind, sign in ((_CHANNEL, Scope.CHANNEL, "channel", "#"), (_USER, Scope.USER, "user", "@")):
        if match := pattern.match(word):
            if len(match.group(1)) > SLACK_ID_LIMIT:
                raise BadQuotaArgs(
                    f"That {kind} ID is {len(match.group(1))} characters long; Slack's are at most {SLACK_ID_LIMIT}. "
                    f"Pick the {kind} from Slack's `{sign}` list."
                )
            return Target(scope, match.group(1))
    if word.startswith("#"):
        raise BadQuotaArgs(
            "Pick the channel from Slack's list as you type `#`, so it arrives as a channel link; "
            "a plain channel name cannot be looked up."
        )
    if word.startswith("@"):
        raise BadQuotaArgs(
            "Pick the person from Slack's list as you type `@`, so it arrives as a mention; "
            "a plain name cannot be looked up."
        )
    raise BadQuotaArgs(
        "Name the quota's target: `here`, a `#channel`, `default` (every channel's default), "
        "an `@person`, or `default-user` (every person's default)."
    )


def parse_quota(args: str, here: str) -> QuotaArgs:
    """Parse the words after `/frugal quota`; raises BadQuotaArgs or InvalidLimit (both InvalidInput)."""
    words = args.split()
    if not words:
        raise BadQuotaArgs("Say what to do: `set`, `show` or `clear`.")
    action, rest = words[0].lower(), words[1:]
    if action == "show":
        if len(rest) > 1:
            raise BadQuotaArgs("`show` takes at most one target.")
        return QuotaArgs("show", parse_target(rest[0], here) if rest else Target(Scope.CHANNEL, here))
    if action == "set":
        if len(rest) < 2:
            raise BadQuotaArgs("`set` needs a target and a limit, e.g. `/frugal quota set here $5/month`.")
        return QuotaArgs("set", parse_target(rest[0], here), limit=parse_setting(" ".join(rest[1:])))
    if action == "clear":
        if not rest or len(rest) > 2:
            raise BadQuotaArgs("`clear` needs a target, and at most one `unit/period`, e.g. `clear here requests/day`.")
        only = parse_metric_period(rest[1]) if len(rest) == 2 else None
        return QuotaArgs("clear", parse_target(rest[0], here), only=only)
    raise BadQuotaArgs(f"`{_plain(words[0])}` is not a quota action: use `set`, `show` or `clear`.")


async def quota_subcommand(request: FrugalRequest) -> None:
    """/frugal quota set|show|clear … — admins only; a malformed command changes nothing and gets the usage line."""
    try:
        parsed = parse_quota(request.args, request.channel_id)
    except InvalidInput as err:
        await request.ack(response_type="ephemeral", text=f"{defuse(str(err))} Nothing was changed. {QUOTA_USAGE}")
        return
    if not await request.require_admin():
        return
    if parsed.limit is not None:
        await request.ack(response_type="ephemeral", text=await _set(request, parsed.target, parsed.limit))
    elif parsed.action == "clear":
        await request.ack(response_type="ephemeral", text=await _clear(request, parsed))
    else:
        blocks = await _show(request, parsed.target)
        await request.ack(response_type="ephemeral", blocks=blocks, text=blocks[0]["text"]["text"])


async def _set(request: FrugalRequest, target: Target, limit: Limit) -> str:
    service = request.deps.quota
    before = [
        r
        for r in await service.limits(request.team_id, target.scope, target.channel_id)
        if (r.metric, r.period) == (limit.metric, limit.period)
    ]
    await service.set_limit(request.team_id, target.scope, target.channel_id, limit, set_by=request.user_id)
    new = quota_blocks.per_period(limit.metric, limit.amount, limit.period.value)
    was = (
        f" (was {quota_blocks.per_period(before[0].metric, before[0].amount, before[0].period.value)})"
        if before
        else ""
    )
    options = f" {quota_blocks.options_sentence(limit.mode, limit.alerts, limit.downgrade)}"
    kind = f"{limit.metric.value}/{limit.period.value}"
    if target.scope is Scope.DEFAULT:
        return (
            f"Done: the workspace default is now *{new}*{was} for every channel without its own "
            f"{kind} limit; each channel counts its own use.{options}"
        )
    if target.scope is Scope.DEFAULT_USER:
        return (
            f"Done: the per-person default is now *{new}*{was} for every person without their own "
            f"{kind} limit; each person's use counts in every channel.{options}"
        )
    now = datetime.now(timezone.utc)
    if target.scope is Scope.USER:
        uses = await service.user_quotas(request.team_id, target.channel_id, now)
        where = " in every channel together"
    else:
        uses = await service.channel_quotas(request.team_id, target.channel_id, now)
        where = ""
    mine = [
        u
        for u in uses
        if u.scope == target.scope.value and u.target and (u.metric, u.period) == (limit.metric, limit.period)
    ]
    so_far = f" So far: {quota_blocks.use_line(mine[0])}." if mine else ""
    return f"Done: {target.label} may use at most *{new}*{where}{was}.{options}{so_far}"


async def _clear(request: FrugalRequest, parsed: QuotaArgs) -> str:
    service, target = request.deps.quota, parsed.target
    metric, period = parsed.only if parsed.only else (None, None)
    removed = await service.clear(request.team_id, target.scope, target.channel_id, metric, period)
    kind = f" of {metric.value}/{period.value}" if metric and period else ""
    if not removed:
        return f"There was no limit{kind} on {target.label} to clear; nothing was changed."
    noun = "limit" if removed == 1 else "limits"
    text = f"Removed {removed} {noun}{kind} from {target.label}."
    if target.scope in (Scope.CHANNEL, Scope.USER):
        now = datetime.now(timezone.utc)
        uses = (
            await service.channel_quotas(request.team_id, target.channel_id, now)
            if target.scope is Scope.CHANNEL
            else await service.user_quotas(request.team_id, target.channel_id, now)
        )
        text += (
            " What applies now: " + "; ".join(quota_blocks.use_line(u) for u in uses) + "."
            if uses
            else " No quota applies to it now."
            if target.scope is Scope.CHANNEL
            else " No per-person quota applies to them now (channel quotas still do)."
        )
    return text


async def _show(request: FrugalRequest, target: Target) -> list[dict]:
    service = request.deps.quota
    tz_name = service.tz.key
    if target.scope.is_default:
        limits = await service.limits(request.team_id, target.scope, "")
        return quota_blocks.default_limits(limits, tz_name, per_person=target.scope is Scope.DEFAULT_USER)
    if target.scope is Scope.USER:
        uses = await service.user_quotas(request.team_id, target.channel_id, datetime.now(timezone.utc))
        return quota_blocks.user_quotas(target.channel_id, uses, tz_name)
    uses = await service.channel_quotas(request.team_id, target.channel_id, datetime.now(timezone.utc))
    return quota_blocks.channel_quotas(target.channel_id, uses, tz_name)


def _plain(word: str) -> str:
    # Echo only plain words: anything else could be markup such as <!channel>.
    return word if re.fullmatch(r"[A-Za-z0-9_-]{1,30}", word) else "that"
