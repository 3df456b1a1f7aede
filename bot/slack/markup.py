"""Slack's markup: what of it Frugal may post, and keeping it out of the model's reach.

Two kinds of text reach a message. Slack text (what people typed, as Slack sent it) already has
`&`, `<` and `>` escaped, and its markup (mentions, channels, links) was put there by the person
asking: it is posted as it came, except that broadcast mentions are defused. Outside text (model
answers, display names, an endpoint's words) is escaped, so none of it becomes a mention or a link.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ENTITY = re.compile(r"&(amp|lt|gt);")
_CHARACTERS = {"amp": "&", "lt": "<", "gt": ">"}
# <!here>, <!channel>, <!everyone> (and the old <!group>), with or without a label: each notifies a
# whole channel, around the workspace's own restrictions when a bot posts it.
_BROADCAST = re.compile(r"<!(here|channel|everyone|group)(?:\|[^<>]*)?>", re.IGNORECASE)

# Code blocks, inline code, <@U…>/<#C…>/<!here>/links, and :emoji: — longest first. A placeholder the user
# typed is masked too, or the answer's placeholder would put a piece of markup in its place.
_MARKUP = re.compile(r"```.*?```|`[^`\n]+`|<[^<>\n]+>|:[a-z0-9_+'\-]+:|⟦[0-9]+⟧", re.DOTALL)
_PLACEHOLDER = re.compile(r"⟦([0-9]{1,6})⟧")


def escape(text: str) -> str:
    """Outside text as Slack shows it, character for character: `&`, `<` and `>` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slack text's three entities back to the characters people typed."""
    return _ENTITY.sub(lambda match: _CHARACTERS[match.group(1)], text)


def defuse(text: str) -> str:
    """Slack text as Frugal posts it: broadcast mentions become plain words that notify nobody."""
    return _BROADCAST.sub(lambda match: "@" + match.group(1).lower(), text)


Restore = Callable[[str], str]


def mask(text: str) -> tuple[str, Restore]:
    """The text the model sees (markup as numbered placeholders, entities as characters), and how to
    turn the model's answer back into text fit to post."""
    pieces: list[str] = []
    plain: list[str] = []
    last = 0
    for match in _MARKUP.finditer(text):
        plain.append(unescape(text[last : match.start()]))
        pieces.append(match.group(0))
        plain.append(f"⟦{len(pieces)}⟧")
        last = match.end()
    plain.append(unescape(text[last:]))
    return "".join(plain), lambda answer: restore(answer, pieces)


def restore(answer: str, pieces: list[str]) -> str:
    """The model's answer fit to post: its own words escaped, each placeholder back as its piece of the
    asker's markup (defused), once; a repeated or unknown placeholder is dropped."""
    out: list[str] = []
    used: set[int] = set()
    last = 0
    for match in _PLACEHOLDER.finditer(answer):
        out.append(escape(answer[last : match.start()]))
        index = int(match.group(1)) - 1
        if 0 <= index < len(pieces) and index not in used:
            used.add(index)
            out.append(defuse(pieces[index]))
        last = match.end()
    out.append(escape(answer[last:]))
    return "".join(out)
