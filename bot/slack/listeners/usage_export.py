"""/frugal usage export [YYYY-MM]: a month's usage as a CSV file, sent to the admin who asks in a direct message."""

from __future__ import annotations

import logging
import re
from datetime import date
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.services.usage_export import to_csv
from bot.slack.grammar import HELP_POINTER
from bot.slack.markup import defuse

if TYPE_CHECKING:  # frugal.py imports this module for its SUBCOMMANDS table
    from bot.slack.frugal_request import FrugalRequest

log = logging.getLogger(__name__)

USAGE = (
    "Usage (admins): `/frugal usage export [YYYY-MM]` — that month's usage (default: this month, in "
    "FRUGAL_TIMEZONE) as a CSV file, one row per day, channel, user and model, sent to you in a direct message. "
    "Example: `/frugal usage export 2026-11`. " + HELP_POINTER
)
# ASCII digits only: int() would also take other scripts' digits, which no one means as a month.
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


class BadMonth(ValueError):
    """The month is not a YYYY-MM month."""


def parse_month(word: str) -> date:
    """`2026-11` → the 1st of that month; raises BadMonth."""
    match = _MONTH.match(word)
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise BadMonth(f"`{word}` is not a month: use YYYY-MM, e.g. `2026-11`.")
    return date(int(match.group(1)), int(match.group(2)), 1)


async def usage_subcommand(request: FrugalRequest) -> None:
    """/frugal usage export [YYYY-MM] (admins)."""
    words = request.args.split()
    if not words or words[0].lower() != "export" or len(words) > 2:
        await request.ack(response_type="ephemeral", text=USAGE)
        return
    try:
        month = parse_month(words[1]) if len(words) == 2 else None
    except BadMonth as err:
        await request.ack(response_type="ephemeral", text=f"{defuse(str(err))} {USAGE}")
        return
    if not await request.require_admin():
        return
    exporter = request.deps.usage_export
    label = f"{month:%Y-%m}" if month else "this month"
    await request.ack(
        response_type="ephemeral", text=f"Exporting {label}'s usage as a CSV file; it comes to you in a direct message."
    )
    export = await exporter.month(month)
    name = f"{export.start.astimezone(exporter.tz):%Y-%m}"
    rows = len(export.rows)
    try:
        # Posted to the user ID, the message opens the app's DM with them (chat:write, no im:write needed);
        # its answer names that DM, where the file goes.
        posted = await request.client.chat_postMessage(
            channel=request.user_id,
            text=(
                f"Frugal's usage for {name} ({exporter.tz.key}): {rows:,} row{'s' if rows != 1 else ''}, one per day, "
                "channel, user and model; costs in USD, empty where a price is unknown."
            ),
        )
        await request.client.files_upload_v2(
            channel=posted["channel"],
            content=to_csv(export),
            filename=f"frugal-usage-{name}.csv",
            title=f"Frugal usage {name}",
        )
    except SlackApiError as err:
        log.warning("usage export upload failed: %s", err.response.get("error"))
        await request.respond(
            response_type="ephemeral",
            replace_original=False,
            text="I couldn't send you the export: Slack refused it. Try again in a few minutes.",
        )
