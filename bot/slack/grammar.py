"""The command grammar: parsing what users type, and the usage lines."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from bot.services.errors import InvalidInput
from bot.services.rewrite import DEFAULT_STYLE, STYLES
from bot.slack.markup import unescape

# The longest Slack ID (workspace, channel, user) Frugal keeps: its database columns hold 32 characters.
SLACK_ID_LIMIT = 32

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
        "• `/frugal models` — the model chain, and which models are healthy now, retired (with the shutdown "
        "date and the replacement) or marked unavailable; `/frugal models retry <model>` clears a mark (admins).",
        "• `/frugal quota set <here|#channel|default|@user|default-user> <N> <requests|tokens|usd>/<day|week|month> "
        "[warn] [alert P,P,…|alert off] [downgrade P%]` — admins; `$5/month` is the same as `5 usd/month`; "
        "`warn` never refuses, only alerts; alerts default to 80 and 100 %; `downgrade 90%` moves requests to "
        "the cheapest model past that share; `@user` and `default-user` count a person's use in every channel.",
        "• `/frugal quota show [here|#channel|@user]` · `/frugal quota clear <here|#channel|@user>` — admins; "
        "`default` and `default-user` work as targets too, and `clear here requests/day` clears just that limit.",
        "• `/frugal labels` shows this channel's classify labels; `/frugal labels set a, b, c` sets them and "
        "`/frugal labels clear` goes back to the default set (admins).",
        "• `/frugal digest <daily|weekly|off> [HH:MM]` — subscribe this channel to cost digests (admins); "
        "`/frugal digest now` posts one at once.",
        "• `/frugal usage export [YYYY-MM]` — a month's usage (default: this one) as a CSV file, sent to you (admins).",
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
    "Usage (admins): `/frugal quota set <here|#channel|default|@user|default-user> <N> "
    "<requests|tokens|usd>/<day|week|month> [warn] [alert P,P,…|alert off] [downgrade P%]` — "
    "e.g. `/frugal quota set here 200 requests/day`, `/frugal quota set #support 100k tokens/week warn`, "
    "`/frugal quota set default $5/month alert 50,80,100` (`$5/month` is `5 usd/month`), "
    "`/frugal quota set @ana 50 requests/day downgrade 90%`, `/frugal quota set default-user $1/day alert off`; "
    "`/frugal quota show [here|#channel|@user]`; `/frugal quota clear <here|#channel|@user>` (or just one limit: "
    "`/frugal quota clear here requests/day`). `default` and `default-user` work as targets everywhere. " + HELP_POINTER
)

_STYLE_PREFIX = re.compile(r"^\s*([A-Za-z]+)\s*:\s*(.*)$", re.DOTALL)
# How close a leading `word:` must be to a style's name to be taken for a mistyped style, not text.
_STYLE_LIKENESS = 0.8
# Characters that show nothing though they are not whitespace: format characters (zero-width space and
# joiners, word joiner, BOM, direction marks, soft hyphen) and the blank letters and fillers.
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u2800\u3164\uffa0")
_ZWJ = "\u200d"


def invisible(char: str) -> bool:
    """True for a character that shows nothing: whitespace, a format character or a blank filler."""
    return char.isspace() or unicodedata.category(char) == "Cf" or char in _BLANK_LETTERS


def meaningful(text: str | None) -> str:
    """`text`, or "" when it is only whitespace and invisible characters (there is nothing to work on)."""
    if not isinstance(text, str):
        return ""
    return text if any(not invisible(char) for char in text) else ""


def clean_label(label: str) -> str:
    """A label as typed, as plain text: Slack's entities decoded, invisible characters dropped (a joiner
    inside an emoji sequence is kept) and spaces collapsed, so labels that look the same are the same."""
    label = unescape(label)
    shown = "".join(
        " " if char.isspace() else char for char in label if char == _ZWJ or not invisible(char) or char.isspace()
    )
    kept = [
        char
        for i, char in enumerate(shown)
        if char != _ZWJ or (0 < i < len(shown) - 1 and _emoji_part(shown[i - 1]) and _emoji_part(shown[i + 1]))
    ]
    return " ".join("".join(kept).split())


def _emoji_part(char: str) -> bool:
    return unicodedata.category(char) in ("So", "Sk", "Mn")


@dataclass(frozen=True)
class RewriteArgs:
    """A parsed `/rewrite` request."""

    style: str
    text: str


def parse_rewrite(text: str) -> RewriteArgs:
    """Split `[style:] text`; a leading word that is not a style is part of the text, unless it is so
    close to one that it must be a typo (InvalidInput, with a did-you-mean)."""
    text = meaningful(text)
    match = _STYLE_PREFIX.match(text)
    if match and match.group(1).lower() in STYLES:
        return RewriteArgs(style=match.group(1).lower(), text=meaningful(match.group(2)).strip())
    if match and (close := difflib.get_close_matches(match.group(1).lower(), STYLES, n=1, cutoff=_STYLE_LIKENESS)):
        word = match.group(1)
        raise InvalidInput(
            f"`{word}` is not a style; did you mean `{close[0]}`? If `{word}:` is part of your text, "
            f"name a style first, e.g. `{DEFAULT_STYLE}: {word}: …`."
        )
    return RewriteArgs(style=DEFAULT_STYLE, text=text.strip())


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
    text = meaningful(text).strip()
    if not text.startswith("["):
        return ClassifyArgs(labels=None, text=text)
    inside, closed, rest = text[1:].partition("]")
    if not closed:
        raise InvalidInput("The label list has no closing `]`.")
    return ClassifyArgs(labels=_labels(inside), text=meaningful(rest).strip())


def parse_label_list(text: str) -> tuple[str, ...]:
    """`a, b, c` or `[a, b, c]` (as `/classify` takes them); raises InvalidInput for a stray bracket."""
    text = text.strip()
    if text.startswith("["):
        inside, closed, rest = text[1:].partition("]")
        if not closed:
            raise InvalidInput("The label list has no closing `]`.")
        if rest.strip():
            raise InvalidInput("Nothing may follow the label list's closing `]`.")
        text = inside
    elif "]" in text:
        raise InvalidInput("The label list has a `]` but no opening `[`.")
    return _labels(text)


def _labels(inside: str) -> tuple[str, ...]:
    return tuple(clean_label(label) for label in inside.split(","))
