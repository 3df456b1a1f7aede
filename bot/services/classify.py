"""Classify a message into exactly one of a set of labels, with the model's confidence when known."""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Protocol

from bot.catalog import TokenUsage
from bot.ports.chat import TokenLogprob
from bot.ports.classify_cache import CachedLabel, ClassifyCache
from bot.ports.completion import (
    CallContext,
    Completer,
    Completion,
    CompletionRequest,
    accepted,
)
from bot.ports.store import StoreUnavailable
from bot.services.errors import InvalidInput, check_text

log = logging.getLogger(__name__)

# What team messages usually are, when neither the command nor the channel names labels.
DEFAULT_LABELS: tuple[str, ...] = ("question", "request", "bug report", "feedback", "announcement", "other")
MIN_LABELS = 2
MAX_LABELS = 50
MAX_LABEL_CHARS = 100

_SYSTEM = (
    "You classify Slack messages. Pick the one label from this list that fits the message best: {labels}. "
    'Answer with JSON of the form {{"label": "<one label from the list, spelled exactly>"}} and nothing else.'
)
# How long a label is reused for the same text and labels, at $0.
CACHE_FOR = timedelta(hours=24)
CACHE_NOTE = "answered from the classifications of the last 24 h, at $0"

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_EDGE_PUNCTUATION = " \t\n\"'`.,;:!?*_()[]{}"


class InvalidLabels(InvalidInput):
    """A label list that cannot be used: too few, too many, empty, too long or repeated labels."""


class ChannelLabelStore(Protocol):
    """Where each channel's label set is kept."""

    async def get(self, team_id: str, channel_id: str) -> tuple[str, ...] | None:
        """The channel's labels, or None when it has none of its own."""
        ...

    async def set(self, team_id: str, channel_id: str, labels: tuple[str, ...], user_id: str, at: datetime) -> None:
        """Replace the channel's labels."""
        ...

    async def clear(self, team_id: str, channel_id: str) -> bool:
        """Remove the channel's labels; True when it had some."""
        ...


@dataclass(frozen=True)
class Classification:
    """The chosen label, how it was read from the answer, and the completion behind it."""

    label: str
    labels: tuple[str, ...]
    source: str  # "given", "channel" or "default": where the label set came from
    confidence: float | None  # 0..1 from log-probabilities, None when the endpoint gave none
    match: str  # "exact" (the answer was a label) or "closest" (the nearest label to a stray answer)
    completion: Completion
    cached: bool = False  # answered from the cache: no model call, nothing charged


def check_labels(raw: Sequence[str]) -> tuple[str, ...]:
    """Cleaned labels, or InvalidLabels saying what is wrong: 2–50 distinct labels of at most 100 characters."""
    labels = tuple(label.strip() for label in raw)
    for position, label in enumerate(labels, start=1):
        if not label:
            raise InvalidLabels(f"Label {position} is empty; separate labels with single commas.")
        if len(label) > MAX_LABEL_CHARS:
            raise InvalidLabels(
                f"The label {label[:20]!r}… is {len(label):,} characters long; the limit is {MAX_LABEL_CHARS}."
            )
    seen: set[str] = set()
    for label in labels:
        if label.casefold() in seen:
            raise InvalidLabels(f"The label {label!r} is listed twice.")
        seen.add(label.casefold())
    if len(labels) < MIN_LABELS:
        raise InvalidLabels(f"Give at least {MIN_LABELS} labels to choose from (got {len(labels)}).")
    if len(labels) > MAX_LABELS:
        raise InvalidLabels(f"Give at most {MAX_LABELS} labels (got {len(labels)}).")
    return labels


def label_schema(labels: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the answer: one field whose value must be one of the labels."""
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(labels)}},
        "required": ["label"],
        "additionalProperties": False,
    }


def parse_label(answer: str, labels: Sequence[str]) -> tuple[str, str]:
    """The label the answer names, and "exact" or "closest"; always one of the labels.

    Reads JSON ({"label": …} or a bare string) first, then the answer as plain text; a label
    mentioned inside a sentence counts (the first one mentioned, and "bug report" is not also a
    mention of "bug"); failing all that, the label most similar to the answer is taken and
    reported as "closest".
    """
    said = _said(answer)
    by_key = {_key(label): label for label in labels}
    if _key(said) in by_key:
        return by_key[_key(said)], "exact"
    spoken = f" {_words(said)} "
    mentioned = [label for label in labels if _words(label) and f" {_words(label)} " in spoken]
    # "bug" inside a mentioned "bug report" is not a mention of its own.
    mentioned = [
        label
        for label in mentioned
        if not any(other != label and f" {_words(label)} " in f" {_words(other)} " for other in mentioned)
    ]
    if mentioned:
        return min(mentioned, key=lambda label: spoken.find(f" {_words(label)} ")), "exact"
    return max(labels, key=lambda label: difflib.SequenceMatcher(None, _key(said), _key(label)).ratio()), "closest"


def label_confidence(answer: str, label: str, logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """exp(sum of the log-probabilities of the tokens that spell the label in the answer), or None.

    That is the probability the model gave to writing this label, token by token, once it had
    started its answer; the first token usually carries the decision. None when the endpoint sent
    no log-probabilities, or its tokens do not spell out the answer.
    """
    if not logprobs or "".join(t.token for t in logprobs) != answer:
        return None
    start = _find_label(answer, label)
    if start < 0:
        return None
    end = start + len(label)
    total, offset = 0.0, 0
    for token in logprobs:
        token_end = offset + len(token.token)
        if token_end > start and offset < end:
            total += token.logprob
        offset = token_end
    return min(1.0, math.exp(total))


class ClassifyService:
    """Classifies text through the model router, with per-channel label sets."""

    def __init__(
        self,
        completer: Completer,
        labels: ChannelLabelStore,
        *,
        max_input_chars: int,
        default_labels: tuple[str, ...] = DEFAULT_LABELS,
        service_tier: str | None = None,
        cache: ClassifyCache | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._completer = completer
        self._labels = labels
        self.max_input_chars = max_input_chars
        self.default_labels = check_labels(default_labels)
        self._service_tier = service_tier  # "flex": half price, slower; the router falls back to the default tier
        self._cache = cache
        self._clock = clock

    async def purge_cache(self) -> int:
        """Forget cached labels older than a day (run daily); how many."""
        return await self._cache.purge(self._clock() - CACHE_FOR) if self._cache is not None else 0

    def validate(self, text: str, labels: Sequence[str] | None) -> tuple[str, tuple[str, ...] | None]:
        """The cleaned text and labels, or InvalidInput before anything is called."""
        return check_text(text, self.max_input_chars), check_labels(labels) if labels is not None else None

    async def labels_for(self, team_id: str, channel_id: str) -> tuple[tuple[str, ...], str]:
        """The channel's label set and where it comes from ("channel" or "default")."""
        own = await self._labels.get(team_id, channel_id)
        return (own, "channel") if own else (self.default_labels, "default")

    async def set_channel_labels(
        self, team_id: str, channel_id: str, raw: Sequence[str], user_id: str
    ) -> tuple[str, ...]:
        """Validate and store a channel's labels; raises InvalidLabels and stores nothing when they are bad."""
        labels = check_labels(raw)
        await self._labels.set(team_id, channel_id, labels, user_id, self._clock())
        return labels

    async def clear_channel_labels(self, team_id: str, channel_id: str) -> bool:
        """Go back to the default labels in this channel; True when it had its own."""
        return await self._labels.clear(team_id, channel_id)

    async def _cached(self, key: str) -> CachedLabel | None:
        if self._cache is None:
            return None
        try:
            return await self._cache.get(key, self._clock() - CACHE_FOR)
        except StoreUnavailable:
            # Asked as if never seen: the quota gate, which needs the database too, decides what happens next.
            return None

    async def classify(self, ctx: CallContext, text: str, labels: Sequence[str] | None = None) -> Classification:
        """Pick exactly one label for `text`; raises InvalidInput or CompletionFailed."""
        text, given = self.validate(text, labels)
        if given is not None:
            chosen, source = given, "given"
        else:
            chosen, source = await self.labels_for(ctx.team_id, ctx.channel_id)
        request = CompletionRequest(
            messages=(
                {"role": "system", "content": _SYSTEM.format(labels=json.dumps(list(chosen), ensure_ascii=False))},
                {"role": "user", "content": text},
            ),
            max_tokens=max_output_tokens(chosen),
            temperature=0.0,
            json_schema=label_schema(chosen),
            logprobs=True,
            service_tier=self._service_tier,
        )
        key = cache_key(ctx.team_id, chosen, text)
        hit = await self._cached(key)
        if hit is not None and hit.label in chosen:
            return Classification(
                label=hit.label,
                labels=chosen,
                source=source,
                confidence=hit.confidence,
                match="exact",
                completion=_from_cache(hit),
                cached=True,
            )
        completion = accepted(await self._completer.complete(ctx, request), "classify")
        label, match = parse_label(completion.text, chosen)
        confidence = label_confidence(completion.text, label, completion.logprobs) if match == "exact" else None
        if self._cache is not None and match == "exact":
            # Only a clear answer is worth repeating; a "closest" guess is asked again next time.
            try:
                await self._cache.put(
                    key, ctx.team_id, CachedLabel(label, confidence, completion.served_model, self._clock())
                )
            except StoreUnavailable:
                # The answer is paid for: it is given, and simply not remembered.
                log.warning("classify answer not cached: the database is unreachable")
        return Classification(
            label=label, labels=chosen, source=source, confidence=confidence, match=match, completion=completion
        )


def cache_key(team_id: str, labels: Sequence[str], text: str) -> str:
    """SHA-256 of the workspace, the label set and the text: the cache keeps this, never the text."""
    material = json.dumps([team_id, list(labels), text], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _from_cache(hit: CachedLabel) -> Completion:
    """A completion standing for a cached answer: no tokens, no cost, and a note that says so."""
    return Completion(
        text=json.dumps({"label": hit.label}, ensure_ascii=False),
        requested_model=hit.served_model,
        served_model=hit.served_model,
        usage=TokenUsage(prompt_tokens=0),
        cost_usd=Decimal(0),
        baseline_cost_usd=Decimal(0),
        extra_notes=(CACHE_NOTE,),
    )


def max_output_tokens(labels: Sequence[str]) -> int:
    """Room for the JSON wrapper and the longest label (a token is at least one character)."""
    return 16 + max(len(label) for label in labels)


def _said(answer: str) -> str:
    """What the answer names: the JSON label field or string if it is JSON, else the text itself."""
    stripped = _FENCE.sub("", answer.strip())
    try:
        data = json.loads(stripped)
    except ValueError:
        return stripped
    if isinstance(data, dict) and isinstance(data.get("label"), str):
        return data["label"]
    return data if isinstance(data, str) else stripped


def _key(text: str) -> str:
    return " ".join(text.strip(_EDGE_PUNCTUATION).casefold().split())


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def _find_label(answer: str, label: str) -> int:
    # Skip the JSON key, so a label spelled "label" is not found in '{"label": ...'.
    after = answer.find(":") + 1 if answer.lstrip().startswith("{") else 0
    start = answer.find(label, after)
    return start if start >= 0 else answer.casefold().find(label.casefold(), after)
