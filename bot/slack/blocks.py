"""Block Kit replies."""

from __future__ import annotations

from typing import Any

from bot.catalog import format_usd
from bot.ports.completion import Completion
from bot.services.rewrite import STYLES, Rewrite

# Slack limits: 2,000 characters in a button value, 3,000 in a section's text.
BUTTON_VALUE_LIMIT = 2000
SECTION_TEXT_LIMIT = 3000

# What chat.postMessage answers where Frugal is not a member (or cannot see the conversation).
NOT_A_MEMBER_ERRORS = frozenset({"not_in_channel", "channel_not_found"})

POST_REWRITE_ACTION = "rewrite_post"
STYLE_ACTION_PREFIX = "rewrite_style_"


def rewrite_result(rewrite: Rewrite, original: str) -> list[dict[str, Any]]:
    """The ephemeral answer to /rewrite: the text, what it cost, and the buttons."""
    blocks: list[dict[str, Any]] = [
        _section(rewrite.text),
        _context(_footer(rewrite.completion, f"style: {rewrite.style}")),
    ]
    post: list[dict[str, Any]] = []
    if len(rewrite.text) <= BUTTON_VALUE_LIMIT:
        post.append(_button("Post to channel", POST_REWRITE_ACTION, rewrite.text, style="primary"))
    else:
        blocks.append(_context("This rewrite is too long for the Post button; copy it instead."))
    others = [
        _button(name.capitalize(), STYLE_ACTION_PREFIX + name, original)
        for name in STYLES
        if name != rewrite.style
    ]
    if post:
        blocks.append({"type": "actions", "block_id": "rewrite_post", "elements": post})
    blocks.append(_context("Try another style:"))
    blocks.append({"type": "actions", "block_id": "rewrite_styles", "elements": others})
    return blocks


def posted_rewrite(text: str, user_id: str) -> list[dict[str, Any]]:
    """A rewrite posted to the channel, saying who asked for it."""
    return [_section(text), _context(f"Rewritten with Frugal for <@{user_id}>")]


def notice(text: str) -> list[dict[str, Any]]:
    """A one-paragraph message."""
    return [_section(text)]


POST_IN_THREAD_ACTION = "post_in_thread"


def thread_answer(text: str, completion: Completion, label: str, user_id: str) -> list[dict[str, Any]]:
    """An answer posted in a thread: the text, then who asked, the model and the cost."""
    return [_section(text), _context(_footer(completion, f"{label} · for <@{user_id}>"))]


def private_answer(text: str, completion: Completion, label: str, post_value: str | None) -> list[dict[str, Any]]:
    """An answer only the caller sees, with a "Post in thread" button when the text fits in one."""
    return [_section(text), _context(_footer(completion, label)), *post_in_thread_button(post_value)]


def post_in_thread_button(post_value: str | None) -> list[dict[str, Any]]:
    """The "Post in thread" button, or a note when the answer does not fit in a button's value."""
    if post_value is None or len(post_value) > BUTTON_VALUE_LIMIT:
        return [_context("This answer is too long for the Post button; copy it instead.")]
    button = _button("Post in thread", POST_IN_THREAD_ACTION, post_value, style="primary")
    return [{"type": "actions", "block_id": "post_in_thread", "elements": [button]}]


def classification_line(label: str, confidence: str) -> str:
    """'*label* · confidence 93%', the label's Slack control characters escaped (labels are user text)."""
    escaped = label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"*{escaped}* · {confidence}"


def posted_in_thread(text: str, credit: str) -> list[dict[str, Any]]:
    """An answer posted in a thread from a private one, saying who asked for it."""
    return [_section(text), _context(credit)]


def _footer(completion: Completion, extra: str) -> str:
    parts = [extra, f"model: {completion.served_model}", f"cost: {format_usd(completion.cost_usd)}"]
    if completion.fallback_note:
        parts.append(completion.fallback_note)
    return " · ".join(parts)


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_TEXT_LIMIT:
        text = text[: SECTION_TEXT_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text or " "}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _button(label: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button
