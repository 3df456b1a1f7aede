"""Keep Slack markup out of the model's reach: mask it before, restore it after."""

from __future__ import annotations

import re

# Code blocks, inline code, <@U…>/<#C…>/<!here>/links, and :emoji: — longest first. A placeholder the user
# typed is masked too, or restore() would put a piece of markup in its place.
_MARKUP = re.compile(r"```.*?```|`[^`\n]+`|<[^<>\n]+>|:[a-z0-9_+'\-]+:|⟦\d+⟧", re.DOTALL)
_PLACEHOLDER = re.compile(r"⟦(\d+)⟧")


def protect(text: str) -> tuple[str, list[str]]:
    """Replace each piece of Slack markup with a numbered placeholder."""
    pieces: list[str] = []

    def mask(match: re.Match[str]) -> str:
        pieces.append(match.group(0))
        return f"⟦{len(pieces)}⟧"

    return _MARKUP.sub(mask, text), pieces


def restore(text: str, pieces: list[str]) -> str:
    """Put the markup back where the model left the placeholders."""

    def unmask(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        return pieces[index] if 0 <= index < len(pieces) else match.group(0)

    return _PLACEHOLDER.sub(unmask, text)
