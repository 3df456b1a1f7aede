"""Input errors the services raise before any model is called."""

from __future__ import annotations


class InvalidInput(ValueError):
    """The user's input cannot be processed; nothing was called or charged."""


class EmptyInput(InvalidInput):
    """There is no text to work on."""


class InputTooLong(InvalidInput):
    """The text is over the documented limit."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"The text is {length:,} characters long; the limit is {limit:,}.")
        self.length = length
        self.limit = limit


def check_text(text: str, limit: int) -> str:
    """Return the stripped text, or raise EmptyInput / InputTooLong."""
    text = text.strip()
    if not text:
        raise EmptyInput("There is no text to work on.")
    if len(text) > limit:
        raise InputTooLong(len(text), limit)
    return text
