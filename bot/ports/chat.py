"""The chat-model port: one Chat Completions call, and how it can fail."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from bot.catalog import CallShape, TokenUsage


@dataclass(frozen=True)
class ChatRequest:
    """One Chat Completions request, independent of any SDK.

    `shape` says how this model takes it: which parameter caps the output (`max_tokens` or
    `max_completion_tokens`), whether `temperature` is sent, and the `reasoning_effort`.
    """

    model: str
    messages: tuple[dict[str, str], ...]
    max_tokens: int
    temperature: float = 0.2
    json_schema: dict[str, Any] | None = None
    logprobs: bool = False
    shape: CallShape = CallShape()
    service_tier: str | None = None  # None: the endpoint's default tier


@dataclass(frozen=True)
class TokenLogprob:
    """One output token with its log-probability."""

    token: str
    logprob: float


@dataclass(frozen=True)
class ChatResult:
    """What the model answered, with the usage it reported."""

    text: str
    usage: TokenUsage
    served_model: str
    latency_ms: float
    logprobs: tuple[TokenLogprob, ...] | None = None
    finish_reason: str | None = None  # "stop", "length", "content_filter", ...
    refusal: str | None = None  # the model's refusal message, when it declined
    service_tier: str | None = None  # the tier that served the call, as the endpoint says


class ErrorKind(enum.Enum):
    """How a model call failed, in the terms of the error table in docs/models.md."""

    RATE_LIMITED = "rate_limit_exceeded"
    NO_CREDIT = "insufficient_quota"
    MODEL_NOT_FOUND = "model_not_found"
    CONTEXT_TOO_LONG = "context_length_exceeded"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection_error"
    AUTH = "auth_error"
    BAD_REQUEST = "bad_request"
    UNSUPPORTED_PARAMETER = "unsupported_parameter"  # this model takes the request another way
    ENDPOINT_NOT_FOUND = "endpoint_not_found"  # a 404 that names no model: OPENAI_BASE_URL is wrong


@dataclass
class ModelCallError(Exception):
    """A failed model call, classified; retry_after is in seconds when the server said."""

    kind: ErrorKind
    model: str
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    detail: str = field(default="", repr=False)
    param: str | None = None  # the request parameter the endpoint refused, when it names one
    request_id: str | None = None  # the endpoint's x-request-id, for OpenAI's support

    def __str__(self) -> str:
        status = f"HTTP {self.status} " if self.status else ""
        return f"{self.model}: {status}{self.code or self.kind.value}"


@dataclass(frozen=True)
class RemoteModel:
    """A model as listed by the endpoint's GET /v1/models."""

    id: str
    shutdown_date: date | None


class ModelListUnavailable(Exception):
    """The endpoint cannot list its models: it has no /v1/models, or (unreachable=True) did not answer."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


class ChatModel(Protocol):
    """Anything that can run a Chat Completions request."""

    async def complete(self, request: ChatRequest) -> ChatResult:
        """Run one request; raise ModelCallError on failure."""
        ...

    async def list_models(self) -> list[RemoteModel]:
        """List the endpoint's models; raise ModelListUnavailable when it cannot."""
        ...
