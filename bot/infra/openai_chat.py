"""The one module that imports openai: Chat Completions and the model list."""

from __future__ import annotations

import time
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
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

_INVALID_MODEL_CODES = {"model_not_found", "invalid_model", "model_not_available"}


class OpenAIChatModel:
    """ChatModel on any OpenAI-compatible endpoint."""

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float) -> None:
        # The router owns retries and fail-over; two retry layers would multiply.
        # The aiohttp transport: httpx's pool probes every idle connection on each request and each
        # response close, which took a quarter of the CPU at 200 concurrent calls (bench/load.py).
        self._client = AsyncOpenAI(
            api_key=api_key or "unset", base_url=base_url, timeout=timeout, max_retries=0,
            http_client=openai.DefaultAioHttpClient(timeout=timeout),
        )

    async def complete(self, request: ChatRequest) -> ChatResult:
        """Run one Chat Completions request; raise ModelCallError on failure."""
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": list(request.messages),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
            }
        if request.logprobs:
            kwargs["logprobs"] = True
        started = time.perf_counter()
        try:
            response = await self._client.chat.completions.create(**kwargs)
        except openai.APIError as exc:
            raise classify_error(exc, request.model, _ms_since(started)) from None
        latency_ms = _ms_since(started)
        if not response.choices:
            # Some compatible servers answer 200 with no choice when generation fails.
            raise ModelCallError(ErrorKind.SERVER_ERROR, request.model, code="empty_response", latency_ms=latency_ms)
        choice = response.choices[0]
        text = choice.message.content or ""
        return ChatResult(
            text=text,
            usage=_usage(response.usage, request, text),
            served_model=response.model or request.model,
            latency_ms=latency_ms,
            logprobs=_logprobs(choice),
        )

    async def list_models(self) -> list[RemoteModel]:
        """GET /v1/models, with each model's shutdown_date when the endpoint gives one."""
        try:
            page = await self._client.models.list()
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise classify_error(exc, "(models.list)", 0.0) from None
        except openai.APIStatusError as exc:
            raise ModelListUnavailable(f"the endpoint has no usable /v1/models (HTTP {exc.status_code})") from None
        except openai.APIError as exc:
            raise ModelListUnavailable(
                f"the endpoint could not be reached ({type(exc).__name__})", unreachable=True
            ) from None
        return [RemoteModel(id=m.id, shutdown_date=_date(getattr(m, "shutdown_date", None))) async for m in page]

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()


def classify_error(exc: openai.APIError, model: str, latency_ms: float) -> ModelCallError:
    """Map an openai exception onto the error table of REFERENCE.md."""
    code = exc.code if isinstance(exc.code, str) else None
    if isinstance(exc, openai.APITimeoutError) and not _dropped_connection(exc):
        return ModelCallError(ErrorKind.TIMEOUT, model, latency_ms=latency_ms)
    if isinstance(exc, openai.APIConnectionError):
        return ModelCallError(ErrorKind.CONNECTION, model, latency_ms=latency_ms)
    if not isinstance(exc, openai.APIStatusError):
        return ModelCallError(ErrorKind.SERVER_ERROR, model, code=code, latency_ms=latency_ms)
    status = exc.status_code
    message = exc.message.lower()
    if status == 429:
        kind = ErrorKind.NO_CREDIT if code == "insufficient_quota" else ErrorKind.RATE_LIMITED
    elif status == 404:
        kind = ErrorKind.MODEL_NOT_FOUND
    elif status == 400 and (code == "context_length_exceeded" or "context length" in message):
        kind = ErrorKind.CONTEXT_TOO_LONG
    elif status == 400 and (code in _INVALID_MODEL_CODES or "invalid model" in message):
        kind = ErrorKind.MODEL_NOT_FOUND
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
        retry_after=_retry_after(exc.response.headers),
        latency_ms=latency_ms,
        detail=exc.message[:300],
    )


def _dropped_connection(exc: BaseException) -> bool:
    """True when the error comes from a lost connection, not a timer: the aiohttp transport reports both as timeouts."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__
    return False


def _retry_after(headers: Any) -> float | None:
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


def _usage(usage: Any, request: ChatRequest, text: str) -> TokenUsage:
    if usage is None:
        # Some compatible servers omit usage; a rough 4-characters-a-token count
        # keeps the ledger and quotas from recording a free call.
        prompt_chars = sum(len(m.get("content", "")) for m in request.messages)
        return TokenUsage(prompt_tokens=max(1, prompt_chars // 4), completion_tokens=max(1, len(text) // 4))
    details = getattr(usage, "prompt_tokens_details", None)
    prompt = max(usage.prompt_tokens or 0, 0)
    # A cached count above the prompt (seen on some gateways) cannot be right; never price below the prompt.
    cached = min(max(getattr(details, "cached_tokens", None) or 0, 0), prompt)
    return TokenUsage(
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=max(usage.completion_tokens or 0, 0),
    )


def _logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    return tuple(TokenLogprob(token=t.token, logprob=t.logprob) for t in content)


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
