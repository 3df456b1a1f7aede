"""The command grammar: parsing what users type, and the usage lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.services.rewrite import DEFAULT_STYLE, STYLES

REWRITE_USAGE = (
    "Usage: `/rewrite [style:] text` — styles: "
    + ", ".join(f"`{s}`" + (" (default)" if s == DEFAULT_STYLE else "") for s in STYLES)
    + ". Example: `/rewrite formal: can u send the report pls`"
)

_STYLE_PREFIX = re.compile(r"^\s*([A-Za-z]+)\s*:\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class RewriteArgs:
    """A parsed `/rewrite` request."""

    style: str
    text: str


def parse_rewrite(text: str) -> RewriteArgs:
    """Split `[style:] text`; a leading word that is not a style is part of the text."""
    match = _STYLE_PREFIX.match(text or "")
    if match and match.group(1).lower() in STYLES:
        return RewriteArgs(style=match.group(1).lower(), text=match.group(2).strip())
    return RewriteArgs(style=DEFAULT_STYLE, text=(text or "").strip())
