"""`frugal digest`: list digest subscriptions, or `--now` post every subscribed channel's digest at once."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.catalog import format_usd
from bot.commands import is_channel_id
from bot.config import ConfigError, Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `frugal digest`."""
    parser = commands.add_parser(
        "digest",
        help="list the channels subscribed to cost digests; --now posts their digests at once",
        description="Without --now, lists the subscriptions. --now posts each subscribed channel's digest "
        "for its current period so far (today, or this week since Monday); the scheduled digests are unaffected.",
    )
    parser.add_argument("--now", action="store_true", help="post the digests now")
    parser.add_argument("--channel", metavar="C", type=_channel_id, help="only this channel (its ID, e.g. C0123ABCD)")
    parser.set_defaults(handler=digest)


def digest(settings: Settings, args: argparse.Namespace) -> int:
    """List subscriptions, or post the digests now; exit code 1 when any could not be posted."""
    if args.now and not settings.oauth_enabled and not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN: required to post digests (or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)")
    return asyncio.run(_digest(settings, args.now, args.channel))


async def _digest(settings: Settings, now: bool, channel: str | None) -> int:
    if not now:
        return await _list(settings, channel)
    from bot.composition import build_container
    from bot.services.digest import PublishFailed

    container = build_container(settings)
    try:
        service = container.digests
        subscriptions = await service.subscriptions(channel)
        if not subscriptions:
            return _none_subscribed(channel)
        failed = 0
        for sub in subscriptions:
            try:
                posted = await service.post_now(sub.team_id, sub.channel_id, sub.frequency)
            except PublishFailed as err:
                failed += 1
                print(f"{sub.channel_id}: not posted: {err}", file=sys.stderr)
                continue
            requests = f"{posted.requests:,} request" + ("" if posted.requests == 1 else "s")
            print(f"{sub.channel_id}: posted ({format_usd(posted.cost_usd)} over {requests} so far)")
        return 1 if failed else 0
    finally:
        await container.aclose()


async def _list(settings: Settings, channel: str | None) -> int:
    from bot.composition import digest_subscriptions
    from bot.slack.listeners.digest import schedule_text

    async with digest_subscriptions(settings) as store:
        subscriptions = await store.subscriptions(channel)
    if not subscriptions:
        return _none_subscribed(channel)
    for sub in subscriptions:
        print(f"{sub.channel_id} (team {sub.team_id}): {schedule_text(sub, settings.timezone)}")
    return 0


def _none_subscribed(channel: str | None) -> int:
    if channel is None:
        print("no channel is subscribed to cost digests")
        return 0
    print(
        f"frugal: channel {channel} has no digest subscription "
        "(an admin subscribes it in Slack with `/frugal digest daily` or `/frugal digest weekly`)",
        file=sys.stderr,
    )
    return 1


def _channel_id(value: str) -> str:
    if not is_channel_id(value):
        raise argparse.ArgumentTypeError(f"not a Slack channel ID: {value!r} (use the ID, e.g. C0123ABCD)")
    return value
