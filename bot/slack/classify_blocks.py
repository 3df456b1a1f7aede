"""Block Kit replies for /classify and the channel label sets."""

from __future__ import annotations

from bot.catalog import describe, format_usd
from bot.ports.completion import Completion
from bot.services.classify import Classification
from bot.slack import block_kit as kit
from bot.slack.block_kit import Block
from bot.slack.markup import defuse, escape

_SOURCES = {"given": "your labels", "channel": "this channel's labels", "default": "the default labels"}
QUOTE_CHARS = 200


def classification_text(result: Classification) -> str:
    """One line naming the label and the confidence, for notifications and plain-text replies."""
    return f"Label: {escape(result.label)} ({confidence_text(result)})"


def confidence_text(result: Classification) -> str:
    """'confidence 93%', or why there is none."""
    if result.confidence is not None:
        return f"confidence {result.confidence:.0%}"
    if result.match == "closest":
        return "closest label to the model's answer; no confidence"
    return "confidence unknown: the endpoint gave no log-probabilities"


def classify_result(result: Classification, text: str) -> list[Block]:
    """The ephemeral answer to /classify: the label, the confidence, the text (Slack text, as it came), the labels and the cost."""
    quote = kit.cut(defuse(text), QUOTE_CHARS)
    return [
        kit.section(f"*{escape(result.label)}* · {confidence_text(result)}"),
        kit.context("> " + quote.replace("\n", "\n> ")),
        kit.context(f"{_SOURCES[result.source]}: " + ", ".join(escape(label) for label in result.labels)),
        kit.context(cost_line(result.completion)),
    ]


def cost_line(completion: Completion) -> str:
    """Model, cost, what the baseline model would have cost, energy estimate, and any fallback note."""
    parts = [
        f"model: {completion.served_model}",
        f"cost: {format_usd(completion.cost_usd)} (baseline: {format_usd(completion.baseline_cost_usd)})",
        describe(completion.energy_wh, completion.energy_source or ""),
    ]
    parts.extend(completion.notes)
    return " · ".join(parts)


def label_set(labels: tuple[str, ...], source: str) -> list[Block]:
    """A channel's label set, saying whether it is its own or the default."""
    return [kit.section(f"{_SOURCES[source].capitalize()}: " + label_list(labels))]


def label_list(labels: tuple[str, ...]) -> str:
    """'`a`, `b`, `c`': labels are plain text, shown as typed."""
    return ", ".join(f"`{escape(label)}`" for label in labels)
