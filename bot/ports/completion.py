"""The completion port: what services ask of the model router."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from bot.catalog import TokenUsage
from bot.ports.chat import TokenLogprob


@dataclass(frozen=True)
class CallContext:
    """Who asked, where, and under which idempotency key; never the text."""

    team_id: str
    channel_id: str
    user_id: str
    request_key: str
    task: str


@dataclass(frozen=True)
class CompletionRequest:
    """A model-agnostic request; the router chooses the model."""

    messages: tuple[dict[str, str], ...]
    max_tokens: int
    temperature: float = 0.2
    json_schema: dict[str, Any] | None = None
    logprobs: bool = False
    # None: the whole chain; otherwise only these models (e.g. those that fit the budget).
    allowed_models: tuple[str, ...] | None = None
    service_tier: str | None = None  # e.g. "flex"; None: the endpoint's default tier


@dataclass(frozen=True)
class Completion:
    """The answer, which model gave it, and what it cost."""

    text: str
    requested_model: str
    served_model: str
    usage: TokenUsage
    cost_usd: Decimal | None
    logprobs: tuple[TokenLogprob, ...] | None = None
    fallback_note: str | None = None
    # What the same tokens would have cost on the baseline model (None: price unknown).
    baseline_cost_usd: Decimal | None = None
    # Estimated energy of the call and where the estimate comes from (None: no energy data).
    energy_wh: float | None = None
    energy_source: str | None = None
    finish_reason: str | None = None  # "length": the answer was cut at the output cap
    refusal: str | None = None  # the model declined; its message, or a plain one for a content filter
    service_tier: str | None = None  # the tier that served the call
    extra_notes: tuple[str, ...] = ()  # e.g. that the answer came from a cache

    @property
    def declined(self) -> bool:
        """The model refused, or a content filter stopped it: there is no answer to use."""
        return self.refusal is not None

    @property
    def cut(self) -> bool:
        """The answer stopped at the output cap."""
        return self.finish_reason == "length"

    @property
    def notes(self) -> tuple[str, ...]:
        """What the reader should know of how the answer came about: a fallback, a cut."""
        notes = [self.fallback_note] if self.fallback_note else []
        if self.cut:
            notes.append("the answer was cut at its length limit")
        return (*notes, *self.extra_notes)


class CompletionFailed(Exception):
    """No model could answer; the message is fit to show a user."""


class CompletionDeclined(CompletionFailed):
    """The model answered but declined the request (a refusal or a content filter); the call was charged."""

    def __init__(self, task: str, completion: Completion) -> None:
        self.completion = completion
        said = (
            f" It said: “{completion.refusal}”"
            if completion.refusal and not completion.refusal.startswith("A content filter")
            else ""
        )
        super().__init__(
            f"The model ({completion.served_model}) declined to {task} this message, so there is nothing to post.{said}"
        )


def accepted(completion: Completion, task: str) -> Completion:
    """The completion, or CompletionDeclined when the model refused (the call stays charged)."""
    if completion.declined:
        raise CompletionDeclined(task, completion)
    return completion


class Completer(Protocol):
    """The model router as the services see it."""

    async def complete(self, ctx: CallContext, request: CompletionRequest) -> Completion:
        """Answer the request or raise CompletionFailed."""
        ...
