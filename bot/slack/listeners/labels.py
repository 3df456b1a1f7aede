"""/frugal labels: show, set or clear this channel's /classify labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.services.errors import InvalidInput
from bot.slack import classify_blocks
from bot.slack.grammar import HELP_POINTER, parse_label_list
from bot.slack.markup import escape

if TYPE_CHECKING:  # frugal.py imports this module for its SUBCOMMANDS table
    from bot.slack.frugal_request import FrugalRequest

LABELS_USAGE = (
    "Usage: `/frugal labels` shows this channel's labels; `/frugal labels set a, b, c` (or `[a, b, c]`) sets them (admins); "
    "`/frugal labels clear` goes back to the default set (admins). " + HELP_POINTER
)


async def labels_subcommand(request: FrugalRequest) -> None:
    """/frugal labels [show | set a, b, c | clear]."""
    word, _, rest = request.args.partition(" ")
    action = word.lower() or "show"
    service = request.deps.classify
    if action == "show" and not rest.strip():
        labels, source = await service.labels_for(request.team_id, request.channel_id)
        await request.ack(
            response_type="ephemeral",
            blocks=classify_blocks.label_set(labels, source),
            text=", ".join(map(escape, labels)),
        )
    elif action == "set" and rest.strip():
        if not await request.require_admin():
            return
        try:
            labels = await service.set_channel_labels(
                request.team_id, request.channel_id, parse_label_list(rest), request.user_id
            )
        except InvalidInput as err:
            await request.ack(response_type="ephemeral", text=f"{escape(str(err))} Nothing was changed. {LABELS_USAGE}")
            return
        await request.ack(
            response_type="ephemeral",
            text="This channel's labels are now: " + ", ".join(map(escape, labels)) + ". `/classify text` uses them.",
        )
    elif action == "clear" and not rest.strip():
        if not await request.require_admin():
            return
        had = await service.clear_channel_labels(request.team_id, request.channel_id)
        labels = ", ".join(map(escape, service.default_labels))
        first = "This channel's labels were removed." if had else "This channel had no labels of its own."
        await request.ack(response_type="ephemeral", text=f"{first} `/classify` uses the default set: {labels}.")
    else:
        await request.ack(response_type="ephemeral", text=LABELS_USAGE)
