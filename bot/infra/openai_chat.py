"""The one module that imports openai: Chat Completions and the model list, both through AsyncOpenAI."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

import openai
from openai import AsyncOpenAI

from bot.catalog import TokenUsage
from bot.ports.chat import (
    ChatRequest,
    ChatResult,
    ErrorKind,
    ModelCallError,
    ModelListUnavailable,
    RemoteModel,
    TokenLogprob,
)

log = logging.getLogger(__name__)

_INVALID_MODEL_CODES = {"model_not_found", "invalid_model", "model_not_available"}
_UNSUPPORTED_CODES = {"unsupported_parameter", "unsupported_value"}
# More tokens than any model's window: a count above it is not a usage report but garbage.
MAX_REPORTED_TOKENS = 100_000_000


class OpenAIChatModel:
    """ChatModel on any OpenAI-compatible endpoint, every call through one AsyncOpenAI client."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        organization: str | None = None,
        project: str | None = None,
    ) -> None:
        # The router owns retries and fail-over; two retry layers would multiply.
        # The aiohttp transport (openai's `aiohttp` extra): httpx's pool probes every idle connection
        # on each request, which showed at hundreds of concurrent calls (docs/benchmarks.md).
        # Everything else (OPENAI_ORG_ID, OPENAI_PROJECT_ID, OPENAI_CUSTOM_HEADERS, proxies) the SDK
        # reads itself, for the chat calls and the model list alike; `frugal` puts .env's values into
        # the process environment first (bot/cli.py).
        self._client = AsyncOpenAI(
            api_key=api_key or "unset",
            base_url=base_url,
            organization=organization,
            project=project,
            timeout=timeout,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(timeout=timeout),
        )
        self._closed = False

    async def complete(self, request: ChatRequest) -> ChatResult:
        """Run one Chat Completions request; raise ModelCallError on failure."""
        if self._closed:  # shutting down: no new connection left open behind
            raise ModelCallError(ErrorKind.CONNECTION, request.model, detail="the model client is closed")
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(
                model=request.model, messages=list(request.messages), **call_arguments(request)
            )
        except openai.APIError as exc:
            err = classify_error(exc, request.model, _ms_since(started))
            log.warning("model call failed: %s (request id %s)", err, err.request_id or "none")
            raise err from None
        latency_ms = _ms_since(started)
        return read_completion(completion, request, latency_ms)

    async def list_models(self) -> list[RemoteModel]:
        """GET /v1/models, with each model's shutdown_date when the endpoint gives one."""
        try:
            page = await self._client.models.list()
            return [RemoteModel(id=m.id, shutdown_date=_date(getattr(m, "shutdown_date", None))) async for m in page]
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise classify_error(exc, "(models.list)", 0.0) from None
        except openai.APIStatusError as exc:
            raise ModelListUnavailable(f"the endpoint has no usable /v1/models (HTTP {exc.status_code})") from None
        except openai.APIError as exc:
            raise ModelListUnavailable(
                f"the endpoint could not be reached ({type(exc).__name__})", unreachable=True
            ) from None

    async def close(self) -> None:
        """Close the HTTP connection pool; a call after this fails as a connection error."""
        self._closed = True
        await self._client.close()


def call_arguments(request: ChatRequest) -> dict[str, Any]:
    """The request's keyword arguments for `chat.completions.create`, in the shape this model takes."""
    shape = request.shape
    arguments: dict[str, Any] = {shape.token_parameter: request.max_tokens}
    if shape.temperature:
        arguments["temperature"] = request.temperature
    if shape.reasoning_effort is not None:
        arguments["reasoning_effort"] = shape.reasoning_effort
    if request.json_schema is not None:
        arguments["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
        }
    if request.logprobs:
        arguments["logprobs"] = True
    if request.service_tier is not None:
        arguments["service_tier"] = request.service_tier
    return arguments


def read_completion(completion: Any, request: ChatRequest, latency_ms: float) -> ChatResult:
    """The ChatResult of an answer; ModelCallError when it is not the API's shape."""
    model = request.model
    # Without strict validation the SDK hands over whatever JSON came back: check each level.
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list):
        # A proxy's HTML error page with a 200, a JSON list, a body cut short.
        raise ModelCallError(ErrorKind.SERVER_ERROR, model, code="invalid_response", latency_ms=latency_ms)
    if not choices:
        # Some compatible servers answer 200 with no choice when generation fails.
        raise ModelCallError(ErrorKind.SERVER_ERROR, model, code="empty_response", latency_ms=latency_ms)
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = _text(getattr(message, "content", None))
    refusal = getattr(message, "refusal", None)
    usage = read_usage(getattr(completion, "usage", None), request, text)
    served = getattr(completion, "model", None)
    tier = getattr(completion, "service_tier", None)
    finish = getattr(choice, "finish_reason", None)
    return ChatResult(
        text=text,
        usage=usage,
        # What the server says it ran, if it says so in a model ID's shape (the ledger column holds 128).
        served_model=served if isinstance(served, str) and 0 < len(served) <= 128 else model,
        latency_ms=latency_ms,
        logprobs=_logprobs(getattr(choice, "logprobs", None)),
        finish_reason=finish if isinstance(finish, str) else None,
        refusal=refusal if isinstance(refusal, str) and refusal else None,
        service_tier=tier if isinstance(tier, str) and len(tier) <= 16 else None,
    )


def read_usage(usage: Any, request: ChatRequest, text: str) -> TokenUsage:
    """The usage the endpoint reported, bounded: a missing or negative count is estimated, an absurd one refused."""
    prompt_estimate = max(1, sum(len(m.get("content", "")) for m in request.messages) // 4)
    completion_estimate = max(1, len(text) // 4)
    if usage is None or not hasattr(usage, "prompt_tokens"):
        # Some compatible servers omit usage; a rough 4-characters-a-token count
        # keeps the ledger and quotas from recording a free call.
        return TokenUsage(prompt_tokens=prompt_estimate, completion_tokens=completion_estimate)
    details_in = getattr(usage, "prompt_tokens_details", None)
    details_out = getattr(usage, "completion_tokens_details", None)
    counts = {
        "prompt": _count(getattr(usage, "prompt_tokens", None)),
        "completion": _count(getattr(usage, "completion_tokens", None)),
        "cached": _count(getattr(details_in, "cached_tokens", None)),
        "written": _count(getattr(details_in, "cache_write_tokens", None)),
        "reasoning": _count(getattr(details_out, "reasoning_tokens", None)),
    }
    if any(value is not None and value > MAX_REPORTED_TOKENS for value in counts.values()):
        raise ModelCallError(ErrorKind.SERVER_ERROR, request.model, code="invalid_usage", detail=str(counts))
    prompt = counts["prompt"] if counts["prompt"] is not None and counts["prompt"] >= 0 else prompt_estimate
    completion = counts["completion"] if counts["completion"] is not None and counts["completion"] >= 0 else 0
    # Parts above their whole (seen on some gateways) cannot be right: never price below the prompt.
    cached = min(max(counts["cached"] or 0, 0), prompt)
    written = min(max(counts["written"] or 0, 0), prompt - cached)
    reasoning = min(max(counts["reasoning"] or 0, 0), completion)
    return TokenUsage(
        prompt_tokens=prompt,
        cached_tokens=cached,
        cache_write_tokens=written,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
    )


def classify_error(exc: openai.APIError, model: str, latency_ms: float) -> ModelCallError:
    """Map an openai exception onto the error table (docs/models.md)."""
    code = exc.code if isinstance(exc.code, str) else None
    if isinstance(exc, openai.APITimeoutError):
        return ModelCallError(ErrorKind.TIMEOUT, model, latency_ms=latency_ms)
    if isinstance(exc, openai.APIConnectionError):
        return ModelCallError(ErrorKind.CONNECTION, model, latency_ms=latency_ms)
    if not isinstance(exc, openai.APIStatusError):
        # A body the SDK could not read as the API's (APIResponseValidationError and the like).
        return ModelCallError(ErrorKind.SERVER_ERROR, model, code="invalid_response", latency_ms=latency_ms)
    param = exc.param if isinstance(exc.param, str) else None
    return classify_status(
        exc.status_code,
        code,
        exc.message,
        exc.response.headers,
        model,
        latency_ms,
        param=param,
        request_id=exc.request_id,
    )


def classify_status(
    status: int,
    code: str | None,
    message: str,
    headers: Mapping[str, str],
    model: str,
    latency_ms: float,
    *,
    param: str | None = None,
    request_id: str | None = None,
) -> ModelCallError:
    """Map an HTTP error answer (status, the error's code and message, headers) onto the error table."""
    lowered = message.lower()
    if status == 429:
        kind = ErrorKind.NO_CREDIT if code == "insufficient_quota" else ErrorKind.RATE_LIMITED
    elif status in (403, 404) and code in _INVALID_MODEL_CODES:
        # 403 model_not_found: this project lacks this one model; the key itself is fine.
        kind = ErrorKind.MODEL_NOT_FOUND
    elif status == 404:
        # A 404 that names no model error is a wrong URL, unless a compatible server says "model" in words.
        kind = ErrorKind.MODEL_NOT_FOUND if "model" in lowered else ErrorKind.ENDPOINT_NOT_FOUND
    elif status == 400 and (code == "context_length_exceeded" or "context length" in lowered):
        kind = ErrorKind.CONTEXT_TOO_LONG
    elif status == 400 and (code in _INVALID_MODEL_CODES or "invalid model" in lowered):
        kind = ErrorKind.MODEL_NOT_FOUND
    elif status == 400 and code in _UNSUPPORTED_CODES:
        kind = ErrorKind.UNSUPPORTED_PARAMETER
    elif status in (401, 403):
        kind = ErrorKind.AUTH
    elif status >= 500 or status in (408, 409):
        kind = ErrorKind.SERVER_ERROR
    else:
        kind = ErrorKind.BAD_REQUEST
    return ModelCallError(
        kind,
        model,
        status=status,
        code=code,
        retry_after=_retry_after(headers),
        latency_ms=latency_ms,
        detail=message[:300],
        param=param,
        request_id=request_id if isinstance(request_id, str) else None,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _logprobs(logprobs: Any) -> tuple[TokenLogprob, ...] | None:
    content = getattr(logprobs, "content", None)
    if not isinstance(content, list) or not content:
        return None
    pairs = [(getattr(t, "token", None), getattr(t, "logprob", None)) for t in content]
    return (
        tuple(
            TokenLogprob(token=token, logprob=float(logprob))
            for token, logprob in pairs
            if isinstance(token, str) and isinstance(logprob, int | float) and not isinstance(logprob, bool)
        )
        or None
    )


def _text(content: Any) -> str:
    """The message's text: a string, or the text parts of a list of content parts (as some gateways send)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(t for p in content if isinstance(t := _field(p, "text"), str))
    return ""


def _field(value: Any, name: str) -> Any:
    """value.name or value[name]: the SDK keeps parts it has no model for as plain dicts."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _date(value: Any) -> date | None:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    if isinstance(value, int | float):
        # Some listings give Unix seconds instead of YYYY-MM-DD.
        return date.fromtimestamp(value)
    return None


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
