"""Block Kit replies for rewrites and answers in threads, with their buttons."""

from __future__ import annotations

from bot.catalog import format_usd
from bot.ports.completion import Completion
from bot.services.rewrite import STYLES, Rewrite
from bot.slack import block_kit as kit
from bot.slack.block_kit import Block
from bot.slack.markup import escape

# What chat.postMessage answers where Frugal is not a member (or cannot see the conversation).
NOT_A_MEMBER_ERRORS = frozenset({"not_in_channel", "channel_not_found"})

POST_REWRITE_ACTION = "rewrite_post"
STYLE_ACTION_PREFIX = "rewrite_style_"
POST_IN_THREAD_ACTION = "post_in_thread"
# Where the buttons' text could not be kept (the database is away): the answer is shown without them.
NO_BUTTONS = "_Buttons are unavailable for a moment; copy the text instead._"


def rewrite_result(rewrite: Rewrite, button_id: str | None) -> list[Block]:
    """The ephemeral answer to /rewrite: all of the text, what it cost, and the buttons (which carry only `button_id`)."""
    if button_id is None:
        return [
            *kit.sections(rewrite.text),
            kit.context(_footer(rewrite.completion, f"style: {rewrite.style}")),
            kit.context(NO_BUTTONS),
        ]
    post = kit.button("Post to channel", POST_REWRITE_ACTION, button_id, style="primary")
    others = [
        kit.button(name.capitalize(), STYLE_ACTION_PREFIX + name, button_id) for name in STYLES if name != rewrite.style
    ]
    return [
        *kit.sections(rewrite.text),
        kit.context(_footer(rewrite.completion, f"style: {rewrite.style}")),
        kit.actions("rewrite_post", [post]),
        kit.context("Try another style:"),
        kit.actions("rewrite_styles", others),
    ]


def posted_rewrite(text: str, user_id: str) -> list[Block]:
    """A rewrite posted to the channel, saying who asked for it."""
    return [*kit.sections(text), kit.context(f"Rewritten with Frugal for <@{user_id}>")]


def notice(text: str) -> list[Block]:
    """A message of Frugal's own words (as long as it needs)."""
    return kit.sections(text)


def thread_answer(text: str, completion: Completion, label: str, user_id: str) -> list[Block]:
    """An answer posted in a thread: the text, then who asked, the model and the cost."""
    return [*kit.sections(text), kit.context(_footer(completion, f"{label} · for <@{user_id}>"))]


def private_answer(text: str, completion: Completion, label: str, button_id: str | None) -> list[Block]:
    """An answer only the caller sees, with a "Post in thread" button."""
    return [*kit.sections(text), kit.context(_footer(completion, label)), *post_in_thread_button(button_id)]


def post_in_thread_button(button_id: str | None) -> list[Block]:
    """The "Post in thread" button, carrying only `button_id` (a line saying it is unavailable for None)."""
    if button_id is None:
        return [kit.context(NO_BUTTONS)]
    return [
        kit.actions("post_in_thread", [kit.button("Post in thread", POST_IN_THREAD_ACTION, button_id, style="primary")])
    ]


def classification_line(label: str, confidence: str) -> str:
    """'*label* · confidence 93%', the label shown as typed (labels are plain text)."""
    return f"*{escape(label)}* · {confidence}"


def posted_in_thread(text: str, credit: str) -> list[Block]:
    """An answer posted in a thread from a private one, saying who asked for it."""
    return [*kit.sections(text), kit.context(credit)]


def _footer(completion: Completion, extra: str) -> str:
    parts = [extra, f"model: {completion.served_model}", f"cost: {format_usd(completion.cost_usd)}"]
    parts.extend(completion.notes)
    return " · ".join(parts)
