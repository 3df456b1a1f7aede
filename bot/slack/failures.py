"""How a failed request is told to the user, in plain words."""

from __future__ import annotations

from bot.ports.completion import CompletionFailed
from bot.services.errors import InvalidInput


def failure_text(err: InvalidInput | CompletionFailed) -> str:
    """The message shown when input was refused or no model could answer."""
    return str(err)
