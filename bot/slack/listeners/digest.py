"""/frugal digest: subscribe a channel to cost digests, stop them, or post one now."""

from __future__ import annotations

import re
from datetime import time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from bot.services.digest import DEFAULT_SEND_TIME, DigestService, Frequency, PublishFailed, Subscription
from bot.slack.grammar import HELP_POINTER
from bot.slack.markup import defuse

if TYPE_CHECKING:  # frugal.py imports this module for its SUBCOMMANDS table
    from bot.slack.frugal_request import FrugalRequest

USAGE = (
    "Usage: `/frugal digest <daily|weekly|off> [HH:MM]` or `/frugal digest now` (admins). "
    "Example: `/frugal digest weekly 09:00` — weekly digests come on Mondays; the default time is 09:00. "
    + HELP_POINTER
)
# ASCII digits only: int() would also take "٠٩" or "𝟗", which no one means as a time of day.
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
NOT_A_MEMBER_WARNING = (
    ":warning: I am not a member of this channel yet, so I cannot post its digest: "
    "invite me with `/invite @Frugal` before the first one is due."
)


class BadDigestArgs(ValueError):
    """The words after `/frugal digest` are not in its grammar."""


def parse_time(word: str) -> time:
    """A 24-hour HH:MM time of day, or BadDigestArgs."""
    match = _TIME.match(word)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise BadDigestArgs(f"`{word}` is not a time of day: use 24-hour HH:MM, e.g. `09:00` or `17:30`.")
    return time(int(match.group(1)), int(match.group(2)))


def schedule_text(sub: Subscription | tuple[Frequency, time], tz: ZoneInfo) -> str:
    """E.g. "a weekly cost digest every Monday at 09:00 (Europe/Paris), covering the previous Monday–Sunday"."""
    frequency, at = (sub.frequency, sub.send_time) if isinstance(sub, Subscription) else sub
    if frequency is Frequency.DAILY:
        return f"a daily cost digest every day at {at:%H:%M} ({tz.key}), covering the previous day"
    return f"a weekly cost digest every Monday at {at:%H:%M} ({tz.key}), covering the previous Monday–Sunday"


async def digest(request: FrugalRequest) -> None:
    """/frugal digest [daily|weekly|off|now] [HH:MM]."""
    words = request.args.lower().split()
    service = request.deps.digests
    try:
        action, at = _parse(words)
    except BadDigestArgs as err:
        await request.ack(response_type="ephemeral", text=f"{defuse(str(err))} {USAGE}")
        return
    if action == "status":
        await request.ack(response_type="ephemeral", text=await _status(service, request))
        return
    if not await request.require_admin():
        return
    if action == "now":
        await _post_now(service, request)
    elif action == "off":
        ended = await service.unsubscribe(request.team_id, request.channel_id)
        text = (
            f"Digests are off for this channel (it got {schedule_text(ended, service.tz)})."
            if ended
            else "This channel has no digest subscription; nothing changed."
        )
        await request.ack(response_type="ephemeral", text=text)
    else:
        await request.ack(response_type="ephemeral", text=await _subscribe(service, request, Frequency(action), at))
        # Asked after the ack: Slack's answer may take longer than the ack may wait.
        if not await _frugal_is_member(request):
            await request.respond(text=NOT_A_MEMBER_WARNING, response_type="ephemeral", replace_original=False)


def _parse(words: list[str]) -> tuple[str, time]:
    if not words:
        return "status", DEFAULT_SEND_TIME
    action, rest = words[0], words[1:]
    if action in ("now", "off"):
        if rest:
            raise BadDigestArgs(f"`{action}` takes no time.")
        return action, DEFAULT_SEND_TIME
    if action not in ("daily", "weekly"):
        raise BadDigestArgs(f"Unknown digest option `{action}`.")
    if len(rest) > 1:
        raise BadDigestArgs("Give at most one time.")
    return action, parse_time(rest[0]) if rest else DEFAULT_SEND_TIME


async def _status(service: DigestService, request: FrugalRequest) -> str:
    sub = await service.subscription(request.team_id, request.channel_id)
    if sub is None:
        return f"This channel gets no cost digest. {USAGE}"
    return f"This channel gets {schedule_text(sub, service.tz)}. Next: {_when(service, sub)}."


async def _subscribe(service: DigestService, request: FrugalRequest, frequency: Frequency, at: time) -> str:
    sub, before = await service.subscribe(request.team_id, request.channel_id, request.user_id, frequency, at)
    schedule = schedule_text(sub, service.tz)
    if before is not None and before.id == sub.id:
        return f"This channel already gets {schedule}. Next: {_when(service, sub)}."
    was = f" (was: {schedule_text(before, service.tz).split(',')[0]})" if before is not None else ""
    return f"Done: this channel will get {schedule}{was}. The first one comes {_when(service, sub)}."


async def _frugal_is_member(request: FrugalRequest) -> bool:
    """False when Slack says Frugal is not in the channel (or cannot see it); True when it is, or cannot tell."""
    try:
        info = await request.client.conversations_info(channel=request.channel_id)
    except SlackApiError as err:
        return err.response.get("error") not in ("channel_not_found", "not_in_channel")
    # Only channels have is_member; a DM with Frugal has none, and Frugal is in it.
    return (info.get("channel") or {}).get("is_member") is not False


async def _post_now(service: DigestService, request: FrugalRequest) -> None:
    sub = await service.subscription(request.team_id, request.channel_id)
    frequency = sub.frequency if sub else Frequency.WEEKLY
    span = "today" if frequency is Frequency.DAILY else "this week"
    await request.ack(response_type="ephemeral", text=f"Posting this channel's cost digest for {span} so far…")
    try:
        await service.post_now(request.team_id, request.channel_id, frequency)
    except PublishFailed as err:
        await request.respond(
            text=f"The digest could not be posted: {err}", response_type="ephemeral", replace_original=False
        )


def _when(service: DigestService, sub: Subscription) -> str:
    at = service.next_send(sub).astimezone(service.tz)
    return f"{at:%a} {at.day} {at:%b} at {at:%H:%M}"
