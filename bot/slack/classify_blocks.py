"""Block Kit replies for /classify and the channel label sets."""

from __future__ import annotations

from typing import Any

from bot.catalog import describe, format_usd
from bot.ports.completion import Completion
from bot.services.classify import Classification

_SOURCES = {"given": "your labels", "channel": "this channel's labels", "default": "the default labels"}
QUOTE_CHARS = 200


def classification_text(result: Classification) -> str:
    """One line naming the label and the confidence, for notifications and plain-text replies."""
    return f"Label: {result.label} ({confidence_text(result)})"


def confidence_text(result: Classification) -> str:
    """'confidence 93%', or why there is none."""
    if result.confidence is not None:
        return f"confidence {result.confidence:.0%}"
    if result.match == "closest":
        return "closest label to the model's answer; no confidence"
    return "confidence unknown: the endpoint gave no log-probabilities"


def classify_result(result: Classification, text: str) -> list[dict[str, Any]]:
    """The ephemeral answer to /classify: the label, the confidence, the text, the labels and the cost."""
    quote = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
    blocks = [
        _section(f"*{_escape(result.label)}* · {confidence_text(result)}"),
        _context("> " + _escape(quote).replace("\n", "\n> ")),
        _context(f"{_SOURCES[result.source]}: " + ", ".join(_escape(label) for label in result.labels)),
        _context(cost_line(result.completion)),
    ]
    return blocks


def cost_line(completion: Completion) -> str:
    """Model, cost, what the baseline model would have cost, energy estimate, and any fallback note."""
    parts = [
        f"model: {completion.served_model}",
        f"cost: {format_usd(completion.cost_usd)} (baseline: {format_usd(completion.baseline_cost_usd)})",
        describe(completion.energy_wh, completion.energy_source or ""),
    ]
    if completion.fallback_note:
        parts.append(completion.fallback_note)
    return " · ".join(parts)


def label_set(labels: tuple[str, ...], source: str) -> list[dict[str, Any]]:
    """A channel's label set, saying whether it is its own or the default."""
    return [_section(f"{_SOURCES[source].capitalize()}: " + ", ".join(f"`{_escape(label)}`" for label in labels))]


def _escape(text: str) -> str:
    # Slack's three control characters; anything else is shown as typed.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}
