"""`frugal usage`: usage and cost per channel and model, as an aligned table in the terminal."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.catalog import format_usd
from bot.commands import is_channel_id
from bot.config import Settings
from bot.services.usage import ModelLine, UsageTable

_SINCE = re.compile(r"^\s*(\d{1,6})\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# Ten years: anything longer is a typo, and would overflow the datetime arithmetic.
MAX_SINCE = timedelta(days=3660)


class BadSince(ValueError):
    """`--since` is not a duration like 12h, 7d or 2w."""


def parse_since(text: str) -> timedelta:
    """'12h', '7d', '2w' → a timedelta; raises BadSince."""
    match = _SINCE.match(text)
    if not match or int(match.group(1)) == 0:
        raise BadSince(f"--since: {text!r} is not a duration like 12h, 7d or 2w (hours, days or weeks)")
    since = timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
    if since > MAX_SINCE:
        raise BadSince(f"--since: {text!r} is too long; the most is {MAX_SINCE.days} days")
    return since


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `frugal usage`."""
    parser = commands.add_parser(
        "usage",
        help="usage and cost per channel and model",
        description="Answered requests, tokens (in, cached, out) and cost per channel and model, with totals. "
        "Failed attempts are counted apart and cost nothing. Default period: this month so far, in FRUGAL_TIMEZONE.",
    )
    parser.add_argument("--channel", metavar="C", help="only this channel (its ID, e.g. C0123ABCD)")
    parser.add_argument("--since", metavar="AGE", help="only the last AGE: 12h, 7d, 2w (default: this month)")
    parser.set_defaults(handler=usage)


def usage(settings: Settings, args: argparse.Namespace) -> int:
    """Print the usage table; exit code 2 for a bad --since or --channel."""
    try:
        since = parse_since(args.since) if args.since is not None else None
    except BadSince as err:
        print(f"frugal: {err}", file=sys.stderr)
        return 2
    if args.channel is not None and not is_channel_id(args.channel):
        print(f"frugal: --channel: {args.channel!r} is not a Slack channel ID (e.g. C0123ABCD)", file=sys.stderr)
        return 2
    table = asyncio.run(_read(settings, since, args.channel))
    print(render(table, settings.timezone, args.channel))
    return 0


async def _read(settings: Settings, since: timedelta | None, channel: str | None) -> UsageTable:
    from bot.composition import usage_reports

    async with usage_reports(settings) as reports:
        return await reports.table(since, channel)


def render(table: UsageTable, tz: ZoneInfo, channel: str | None = None) -> str:
    """The table as aligned text: a heading, one line per channel and model, then the totals."""
    where = f"channel {channel}" if channel else "every channel"
    heading = f"Usage of {where} from {_local(table.start, tz)} to {_local(table.end, tz)} ({tz.key})"
    if not table.lines:
        return f"{heading}\nNo requests in this period."
    teams = {team for team, _, _ in table.lines}
    header = (["Team"] if len(teams) > 1 else []) + ["Channel", "Model", "Requests", "Tokens in", "Cached",
                                                     "Tokens out", "Cost", "Failed"]
    rows = [
        ([team] if len(teams) > 1 else []) + [channel_id, *_cells(line)] for team, channel_id, line in table.lines
    ]
    total = ([""] if len(teams) > 1 else []) + ["Total", "", *_cells(table.total)[1:]]
    numeric_from = len(header) - 6
    widths = [max(len(row[i]) for row in [header, *rows, total]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i >= numeric_from else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    out = [heading, "", line(header), rule, *(line(row) for row in rows), rule, line(total)]
    notes = []
    if table.total.unpriced:
        notes.append(
            f"{table.total.unpriced:,} answered requests used a model with no known price; they are not in the cost."
        )
    if table.total.failed:
        notes.append("Failed attempts are not charged and not in the token counts.")
    savings = table.total.savings_usd
    if savings is not None:
        notes.append(f"Saved {format_usd(savings)} against the baseline model (FRUGAL_BASELINE_MODEL) on the same tokens.")
    return "\n".join(out + ([""] + notes if notes else []))


def _cells(line: ModelLine) -> list[str]:
    return [
        line.model,
        f"{line.requests:,}",
        f"{line.prompt_tokens:,}",
        f"{line.cached_tokens:,}",
        f"{line.completion_tokens:,}",
        _cost(line),
        f"{line.failed:,}",
    ]


def _cost(line: ModelLine) -> str:
    if line.cost_known:
        return format_usd(line.cost_usd)
    if line.unpriced == line.requests:
        return "price unknown"
    return f"{format_usd(line.cost_usd)} + {line.unpriced:,} unpriced"


def _local(instant: datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")
