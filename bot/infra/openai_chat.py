"""The one module that imports openai: Chat Completions and the model list."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
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
# Calls in flight to the model endpoint at once (the SDK's own default); at 1 s a call, 200/s needs 200.
MAX_CONNECTIONS = 1000


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
        # The SDK resolves the endpoint and key (arguments, OPENAI_BASE_URL, its default); the hot path reuses them.
        self._completions_url = f"{str(self._client.base_url).rstrip('/')}/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {self._client.api_key}",
            "Accept": "application/json",
            "User-Agent": f"frugal (openai-python {openai.__version__} compatible)",
        }
        # As the SDK sends them (from OPENAI_ORG_ID / OPENAI_PROJECT_ID): the calls are billed where it bills.
        for header, value in (("OpenAI-Organization", self._client.organization), ("OpenAI-Project", self._client.project)):
            if value:
                self._headers[header] = value
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._proxy = _env_proxy(self._completions_url)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def complete(self, request: ChatRequest) -> ChatResult:
        """Run one Chat Completions request; raise ModelCallError on failure."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": list(request.messages),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
            }
        if request.logprobs:
            body["logprobs"] = True
        if self._closed:  # shutting down: no new session left open behind
            raise ModelCallError(ErrorKind.CONNECTION, request.model, detail="the model client is closed")
        started = time.perf_counter()
        # One POST on aiohttp, not `client.chat.completions.create`: the SDK's request building, httpx
        # layers and response models cost ~1.2 ms of CPU per call against ~0.2 ms for the same POST,
        # the largest share of a reply's CPU at 200 calls/s (docs/benchmarks.md). The payload and the
        # error table are the API's own.
        try:
            async with self._http().post(self._completions_url, json=body, headers=self._headers, proxy=self._proxy) as response:
                status, headers, payload = response.status, response.headers, await response.read()
        except TimeoutError:
            raise ModelCallError(ErrorKind.TIMEOUT, request.model, latency_ms=_ms_since(started)) from None
        except aiohttp.ClientError:
            raise ModelCallError(ErrorKind.CONNECTION, request.model, latency_ms=_ms_since(started)) from None
        latency_ms = _ms_since(started)
        if status >= 300:
            raise _status_error(status, payload, headers, request.model, latency_ms)
        try:
            completion = json.loads(payload)
            choices = completion.get("choices")
        except (ValueError, AttributeError):
            # A proxy's HTML error page with a 200, or a body cut short.
            raise ModelCallError(ErrorKind.SERVER_ERROR, request.model, code="invalid_response", latency_ms=latency_ms) from None
        if not isinstance(choices, list):
            raise ModelCallError(ErrorKind.SERVER_ERROR, request.model, code="invalid_response", latency_ms=latency_ms)
        if not choices or not isinstance(choices[0], dict):
            # Some compatible servers answer 200 with no choice when generation fails.
            raise ModelCallError(ErrorKind.SERVER_ERROR, request.model, code="empty_response", latency_ms=latency_ms)
        choice = choices[0]
        text = _text(_get(choice, "message", "content"))
        served = completion.get("model")
        return ChatResult(
            text=text,
            usage=_usage(completion.get("usage"), request, text),
            # What the server says it ran, if it says so in a model ID's shape (the ledger column holds 128).
            served_model=served if isinstance(served, str) and 0 < len(served) <= 128 else request.model,
            latency_ms=latency_ms,
            logprobs=_logprobs(choice),
        )

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Opened on first use, inside the running loop.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS), timeout=self._timeout)
        return self._session

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
        """Close the HTTP connection pools; a call after this fails as a connection error."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._client.close()


def classify_error(exc: openai.APIError, model: str, latency_ms: float) -> ModelCallError:
    """Map an openai exception (the model list's calls) onto the error table of REFERENCE.md."""
    code = exc.code if isinstance(exc.code, str) else None
    if isinstance(exc, openai.APITimeoutError):
        return ModelCallError(ErrorKind.TIMEOUT, model, latency_ms=latency_ms)
    if isinstance(exc, openai.APIConnectionError):
        return ModelCallError(ErrorKind.CONNECTION, model, latency_ms=latency_ms)
    if not isinstance(exc, openai.APIStatusError):
        return ModelCallError(ErrorKind.SERVER_ERROR, model, code=code, latency_ms=latency_ms)
    return classify_status(exc.status_code, code, exc.message, exc.response.headers, model, latency_ms)


def classify_status(status: int, code: str | None, message: str, headers: Any, model: str, latency_ms: float) -> ModelCallError:
    """Map an HTTP error answer (status, the error's code and message, headers) onto the error table of REFERENCE.md."""
    lowered = message.lower()
    if status == 429:
        kind = ErrorKind.NO_CREDIT if code == "insufficient_quota" else ErrorKind.RATE_LIMITED
    elif status == 404:
        kind = ErrorKind.MODEL_NOT_FOUND
    elif status == 400 and (code == "context_length_exceeded" or "context length" in lowered):
        kind = ErrorKind.CONTEXT_TOO_LONG
    elif status == 400 and (code in _INVALID_MODEL_CODES or "invalid model" in lowered):
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
        retry_after=_retry_after(headers),
        latency_ms=latency_ms,
        detail=message[:300],
    )


def _status_error(status: int, payload: bytes, headers: Any, model: str, latency_ms: float) -> ModelCallError:
    """The ModelCallError for a non-2xx answer, its body the API's {"error": {"code", "message"}} or anything else."""
    try:
        error = json.loads(payload).get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        error = {"message": payload[:300].decode(errors="replace")}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    return classify_status(status, code, f"Error code: {status} - {message}", headers, model, latency_ms)


def _env_proxy(url: str) -> str | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY name for ``url`` (none when NO_PROXY covers its host), as the SDK honours them.

    Read once: aiohttp's trust_env re-reads the environment and ~/.netrc on every request.
    """
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


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
    if not isinstance(usage, dict):
        # Some compatible servers omit usage; a rough 4-characters-a-token count
        # keeps the ledger and quotas from recording a free call.
        prompt_chars = sum(len(m.get("content", "")) for m in request.messages)
        return TokenUsage(prompt_tokens=max(1, prompt_chars // 4), completion_tokens=max(1, len(text) // 4))
    prompt = max(_int(usage.get("prompt_tokens")), 0)
    # A cached count above the prompt (seen on some gateways) cannot be right; never price below the prompt.
    cached = min(max(_int(_get(usage, "prompt_tokens_details", "cached_tokens")), 0), prompt)
    return TokenUsage(
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=max(_int(usage.get("completion_tokens")), 0),
    )


def _logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...] | None:
    content = _get(choice, "logprobs", "content")
    if not isinstance(content, list) or not content:
        return None
    pairs = [(t.get("token"), t.get("logprob")) for t in content if isinstance(t, dict)]
    return tuple(
        TokenLogprob(token=token, logprob=float(logprob))
        for token, logprob in pairs
        if isinstance(token, str) and isinstance(logprob, int | float)
    ) or None


def _text(content: Any) -> str:
    """The message's text: a string, or the text parts of a list of content parts (as some gateways send)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _get(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]..., or None where a level is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


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
