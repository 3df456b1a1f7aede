"""`frugal usage`: usage and cost per channel and model, as a table in the terminal, or day by day as CSV or JSON."""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import sys
from datetime import datetime, timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console
from rich.table import Table

from bot.catalog import format_usd
from bot.commands import is_channel_id
from bot.config import Settings
from bot.services.usage import ModelLine, UsageTable
from bot.services.usage_export import UsageExport, to_csv, to_json_lines

_SINCE = re.compile(r"^\s*(\d{1,6})\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# Ten years: anything longer is a typo, and would overflow the datetime arithmetic.
MAX_SINCE = timedelta(days=3660)
# Where output is not a terminal (a file, a pipe), lines are never wrapped, so grep and awk see whole rows.
UNWRAPPED = 1000
FORMATS = ("table", "csv", "json")


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
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default), or one row per day (in FRUGAL_TIMEZONE) x channel x user x model: "
        "csv (FinOps FOCUS column names) or json (JSON Lines, one object per row)",
    )
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
    if args.format != "table":
        export = asyncio.run(_export(settings, since, args.channel))
        sys.stdout.write(to_csv(export) if args.format == "csv" else to_json_lines(export))
        return 0
    table = asyncio.run(_read(settings, since, args.channel))
    print_table(table, settings.timezone, args.channel, sys.stdout)
    return 0


async def _read(settings: Settings, since: timedelta | None, channel: str | None) -> UsageTable:
    from bot.composition import usage_reports

    async with usage_reports(settings) as reports:
        return await reports.table(since, channel)


async def _export(settings: Settings, since: timedelta | None, channel: str | None) -> UsageExport:
    from bot.infra.db.engine import make_engine, make_sessionmaker
    from bot.infra.db.usage_export import SqlUsageExport
    from bot.services.usage_export import UsageExporter

    engine = make_engine(settings.database_url)
    try:
        return await UsageExporter(SqlUsageExport(make_sessionmaker(engine)), settings.timezone).recent(since, channel)
    finally:
        await engine.dispose()


def print_table(table: UsageTable, tz: ZoneInfo, channel: str | None, file: TextIO) -> None:
    """Print the table: at the terminal's width and in colour on a terminal, unwrapped and plain elsewhere."""
    console = Console(file=file, highlight=False)
    if not console.is_terminal:
        console = Console(file=file, highlight=False, width=UNWRAPPED, no_color=True)
    _print(console, table, tz, channel)


def render(table: UsageTable, tz: ZoneInfo, channel: str | None = None, *, width: int = UNWRAPPED) -> str:
    """The table as plain text, `width` columns at most: a heading, one line per channel and model, the totals."""
    out = io.StringIO()
    _print(Console(file=out, width=width, highlight=False, no_color=True), table, tz, channel)
    return out.getvalue().rstrip("\n")


def _print(console: Console, table: UsageTable, tz: ZoneInfo, channel: str | None) -> None:
    where = f"channel {channel}" if channel else "every channel"
    console.print(
        f"Usage of {where} from {_local(table.start, tz)} to {_local(table.end, tz)} ({tz.key})", markup=False
    )
    if not table.lines:
        console.print("No requests in this period.")
        return
    console.print()
    console.print(_table(table))
    notes = []
    if table.total.unpriced:
        notes.append(
            f"{table.total.unpriced:,} answered requests used a model with no known price; they are not in the cost."
        )
    if table.total.failed:
        notes.append("Failed attempts are not charged and not in the token counts.")
    savings = table.total.savings_usd
    if savings is not None:
        notes.append(
            f"Saved {format_usd(savings)} against the baseline model (FRUGAL_BASELINE_MODEL) on the same tokens."
        )
    if notes:
        console.print()
        for note in notes:
            console.print(note, markup=False)


def _table(table: UsageTable) -> Table:
    teams = len({team for team, _, _ in table.lines}) > 1
    # Two spaces between columns and no side borders, so 80 columns hold a one-workspace table; when a
    # terminal is narrower than the table, model names and costs wrap inside their cells, IDs and counts never.
    grid = Table(
        box=box.SIMPLE,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        show_footer=True,
        header_style="bold",
        footer_style="bold",
    )
    if teams:
        grid.add_column("Team", footer="", no_wrap=True)
    grid.add_column("Channel", footer="Total", no_wrap=True)
    grid.add_column("Model", footer="", overflow="fold")
    for name, footer in zip(
        ("Requests", "Tokens in", "Cached", "Tokens out", "Cost", "Failed"), _cells(table.total)[1:], strict=True
    ):
        grid.add_column(name, footer=footer, justify="right", no_wrap=name != "Cost", overflow="fold")
    for team, channel_id, line in table.lines:
        grid.add_row(*([team] if teams else []), channel_id, *_cells(line))
    return grid


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
