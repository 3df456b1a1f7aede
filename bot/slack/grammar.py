"""The command grammar: parsing what users type, and the usage lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.services.errors import InvalidInput
from bot.services.rewrite import DEFAULT_STYLE, STYLES

# Every usage line ends with this pointer to the full grammar.
HELP_POINTER = "Type `/frugal help` for the grammar of every command."

REWRITE_USAGE = (
    "Usage: `/rewrite [style:] text` — styles: "
    + ", ".join(f"`{s}`" + (" (default)" if s == DEFAULT_STYLE else "") for s in STYLES)
    + ". Example: `/rewrite formal: can u send the report pls`. "
    + HELP_POINTER
)

HELP = "\n".join(
    [
        "*Frugal* — cheap, fast writing help. Commands:",
        "• `/rewrite [style:] text` — rewrite text (styles: " + ", ".join(STYLES) + f"; default {DEFAULT_STYLE}).",
        "• `/classify [label, label, ...] text` — pick exactly one label (without the bracket: this channel's labels).",
        "• `/usage` — this channel's usage, cost and remaining quota for the current period.",
        "• `/frugal help` — this help.",
        "• `/frugal models` — the model chain, and which models are healthy now.",
        "• `/frugal quota set <here|#channel|default> <N> <requests|tokens|usd>/<day|week|month>` — admins; "
        "`$5/month` is the same as `5 usd/month`.",
        "• `/frugal quota show [here|#channel]` · `/frugal quota clear <here|#channel>` — admins; "
        "`default` works as a target too, and `clear here requests/day` clears just that limit.",
        "• `/frugal labels` shows this channel's classify labels; `/frugal labels set a, b, c` sets them and "
        "`/frugal labels clear` goes back to the default set (admins).",
        "• `/frugal digest <daily|weekly|off> [HH:MM]` — subscribe this channel to cost digests (admins); "
        "`/frugal digest now` posts one at once.",
        "• Mention me: `@Frugal rewrite formal: text`, `@Frugal classify [a, b] text`, `@Frugal help`; "
        "in a thread, `@Frugal rewrite` (or `classify`) alone works on the thread's first message; "
        "I answer in the thread.",
        "• Message shortcuts: *Rewrite with Frugal* and *Classify with Frugal* on any message "
        "(its ⋮ menu); the answer comes to you alone, with a *Post in thread* button.",
        "• My *Home* tab: this month's usage of your channels and the models' health "
        "(admins also see every channel's quota and digest).",
    ]
)

QUOTA_USAGE = (
    "Usage (admins): `/frugal quota set <here|#channel|default> <N> <requests|tokens|usd>/<day|week|month>` — "
    "e.g. `/frugal quota set here 200 requests/day`, `/frugal quota set #support 100k tokens/week`, "
    "`/frugal quota set default $5/month` (`$5/month` is `5 usd/month`); "
    "`/frugal quota show [here|#channel]`; `/frugal quota clear <here|#channel>` (or just one limit: "
    "`/frugal quota clear here requests/day`). `default` works as a target everywhere. " + HELP_POINTER
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


CLASSIFY_USAGE = (
    "Usage: `/classify [label, label, ...] text` — picks exactly one label; without the bracket, this "
    "channel's labels (`/frugal labels`) or the default set. Example: `/classify [bug, question, praise] the "
    "export button does nothing`. " + HELP_POINTER
)


@dataclass(frozen=True)
class ClassifyArgs:
    """A parsed `/classify` request; labels is None when the text names none."""

    labels: tuple[str, ...] | None
    text: str


def parse_classify(text: str) -> ClassifyArgs:
    """Split `[a, b, ...] text`; raises InvalidInput for a bracket that is never closed."""
    text = (text or "").strip()
    if not text.startswith("["):
        return ClassifyArgs(labels=None, text=text)
    inside, closed, rest = text[1:].partition("]")
    if not closed:
        raise InvalidInput("The label list has no closing `]`.")
    return ClassifyArgs(labels=tuple(label.strip() for label in inside.split(",")), text=rest.strip())
