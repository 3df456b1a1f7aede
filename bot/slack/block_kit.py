"""One way to build Block Kit: slack_sdk's block classes, which check Slack's limits, and the cuts that keep text inside them.

Every text object is mrkdwn with `verbatim` on: Slack then links only the markup that is written out
(`<@U…>`, `<https://…|…>`), never a bare URL or a plain `@here` that happens to be in the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

Block = dict[str, Any]

SECTION_TEXT_LIMIT = SectionBlock.text_max_length
HEADER_TEXT_LIMIT = HeaderBlock.text_max_length
BUTTON_VALUE_LIMIT = ButtonElement.value_max_length
BUTTON_TEXT_LIMIT = ButtonElement.text_max_length
SECTION_FIELDS_LIMIT = SectionBlock.fields_max_length
CONTEXT_ELEMENTS_LIMIT = ContextBlock.elements_max_length
# Slack's limits that slack_sdk does not check: a field's text, and the blocks of one message.
FIELD_TEXT_LIMIT = 2000
MESSAGE_BLOCKS_LIMIT = 50
ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and "…", never ending inside markup or an entity."""
    if len(text) <= limit:
        return text
    return text[: _safe_end(text, limit - len(ELLIPSIS))] + ELLIPSIS


def split(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` characters, broken at a paragraph, a line or a space where one is near."""
    parts: list[str] = []
    while len(text) > limit:
        end = _break(text, limit)
        parts.append(text[:end].rstrip())
        text = text[end:].lstrip(" \n")
    parts.append(text)
    return [part for part in parts if part.strip()] or [""]


def mrkdwn(text: str) -> MarkdownTextObject:
    """A mrkdwn text object that links only the markup written out in it."""
    return MarkdownTextObject(text=text, verbatim=True)


def section(text: str) -> Block:
    """One section; text beyond Slack's 3,000 characters is cut with "…"."""
    return SectionBlock(text=mrkdwn(cut(text, SECTION_TEXT_LIMIT) or " ")).to_dict()


def sections(text: str, *, max_blocks: int = MESSAGE_BLOCKS_LIMIT - 5) -> list[Block]:
    """As many sections as `text` needs, so all of it can be read; past `max_blocks`, the last one is cut."""
    parts = split(text)
    if len(parts) > max_blocks:
        parts = parts[: max_blocks - 1] + [cut("\n".join(parts[max_blocks - 1 :]), SECTION_TEXT_LIMIT)]
    return [section(part) for part in parts]


def fields(texts: Sequence[str]) -> Block:
    """A section of up to ten side-by-side fields."""
    return SectionBlock(fields=[mrkdwn(cut(t, FIELD_TEXT_LIMIT) or " ") for t in texts]).to_dict()


def context(*texts: str) -> Block:
    """A context block: small grey text, one element per text."""
    return ContextBlock(elements=[mrkdwn(cut(t, SECTION_TEXT_LIMIT) or " ") for t in texts]).to_dict()


def header(text: str) -> Block:
    """A header: plain text, cut at Slack's 150 characters."""
    return HeaderBlock(text=PlainTextObject(text=cut(text, HEADER_TEXT_LIMIT))).to_dict()


def divider() -> Block:
    """A horizontal rule."""
    return DividerBlock().to_dict()


def button(label: str, action_id: str, value: str, *, style: str | None = None) -> ButtonElement:
    """A button; its value must fit in Slack's 2,000 characters (slack_sdk raises otherwise)."""
    return ButtonElement(text=cut(label, BUTTON_TEXT_LIMIT), action_id=action_id, value=value, style=style)


def actions(block_id: str, buttons: Sequence[ButtonElement]) -> Block:
    """A row of buttons."""
    return ActionsBlock(block_id=block_id, elements=list(buttons)).to_dict()


def _break(text: str, limit: int) -> int:
    window = text[:limit]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > limit // 2 and (end := _safe_end(text, at + len(separator))):
            return end
    # A piece of markup longer than a whole section is the one thing cut in two.
    return _safe_end(text, limit) or limit


def _safe_end(text: str, end: int) -> int:
    # Markup (<@U1>, <https://…|label>) and entities (&amp;) cut in two would show as garbage.
    opened = text.rfind("<", 0, end)
    if opened >= 0 and opened > text.rfind(">", 0, end):
        end = opened
    ampersand = text.rfind("&", max(0, end - 4), end)
    if ampersand >= 0 and ";" not in text[ampersand:end]:
        end = ampersand
    return end
