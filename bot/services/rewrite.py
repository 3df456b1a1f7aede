"""Rewrite a message in one of a few styles, keeping meaning, language and markup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.ports.completion import CallContext, Completer, Completion, CompletionRequest, accepted
from bot.services.errors import check_text

DEFAULT_STYLE = "clear"
STYLES: dict[str, str] = {
    "clear": "Rewrite the message so it is clear and easy to read.",
    "formal": "Rewrite the message in a formal, professional tone.",
    "friendly": "Rewrite the message in a warm, friendly tone.",
    "concise": "Rewrite the message as briefly as possible without losing anything important.",
    "grammar": "Fix only spelling, grammar and punctuation mistakes; change nothing else.",
}

_SYSTEM = (
    "You edit Slack messages. {instruction} Keep the meaning. Answer in the same language "
    "as the message. The message contains placeholders such as ⟦1⟧ standing for mentions, "
    "links, code and emoji: keep every placeholder exactly as written. Reply with the "
    "rewritten message only, with no preamble and no quotation marks."
)


# The surface's markup kept from the model: `masking(text)` gives the text the model sees, with markup
# as placeholders such as ⟦1⟧, and the function that turns the model's answer into text fit to post.
Masking = Callable[[str], tuple[str, Callable[[str], str]]]


@dataclass(frozen=True)
class Rewrite:
    """A rewritten text (fit to post) and the completion that produced it."""

    text: str
    style: str
    completion: Completion


class RewriteService:
    """Rewrites text through the model router."""

    def __init__(self, completer: Completer, *, max_input_chars: int, masking: Masking) -> None:
        self._completer = completer
        self.max_input_chars = max_input_chars
        self._masking = masking

    def validate(self, text: str, style: str) -> str:
        """Return the cleaned text, or raise InvalidInput before anything is called."""
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}")
        return check_text(text, self.max_input_chars)

    async def rewrite(self, ctx: CallContext, text: str, style: str = DEFAULT_STYLE) -> Rewrite:
        """Rewrite `text` in `style`; raises InvalidInput or CompletionFailed."""
        text = self.validate(text, style)
        masked, restore = self._masking(text)
        request = CompletionRequest(
            messages=(
                {"role": "system", "content": _SYSTEM.format(instruction=STYLES[style])},
                {"role": "user", "content": masked},
            ),
            max_tokens=max_output_tokens(text),
        )
        completion = accepted(await self._completer.complete(ctx, request), "rewrite")
        return Rewrite(text=restore(completion.text.strip()), style=style, completion=completion)


def max_output_tokens(text: str) -> int:
    """A generous output cap for a rewrite of `text` (about 4 characters a token, doubled)."""
    return min(2048, 128 + len(text) // 2)
