"""Scriptable fake of the OpenAI Chat Completions and Models HTTP API."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from aiohttp import web
from multidict import CIMultiDict

from ._server import ThreadedAiohttpServer

DEFAULT_MODELS = ("gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "gpt-4o")


@dataclass(frozen=True)
class RecordedRequest:
    """One request received by the fake, with case-insensitive headers."""

    path: str
    json: dict[str, Any]
    headers: Mapping[str, str]
    at: float


@dataclass(frozen=True)
class Reply:
    """Answer with ``text``; token counts default to word counts, logprobs are (token, logprob) pairs."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    logprobs: list[tuple[str, float]] | None = None
    headers: dict[str, str] | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Fail:
    """Answer with an OpenAI-shaped error body and the given HTTP status and headers."""

    status: int
    code: str | None
    message: str = "Simulated failure"
    type: str | None = None
    headers: dict[str, str] | None = None
    delay: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: float = 0.05) -> Fail:
        """429 rate limit with ``retry-after`` and ``retry-after-ms`` headers."""
        headers = {"retry-after": str(retry_after), "retry-after-ms": str(int(retry_after * 1000))}
        return cls(429, "rate_limit_exceeded", "Rate limit reached for requests", "requests", headers)

    @classmethod
    def insufficient_quota(cls) -> Fail:
        """429 quota exhausted (not retryable in practice)."""
        message = "You exceeded your current quota, please check your plan and billing details."
        return cls(429, "insufficient_quota", message, "insufficient_quota")

    @classmethod
    def model_not_found(cls, model: str) -> Fail:
        """404 for a model that does not exist or is not accessible."""
        message = f"The model `{model}` does not exist or you do not have access to it."
        return cls(404, "model_not_found", message)

    @classmethod
    def server_error(cls) -> Fail:
        """500 internal error, as OpenAI sends it (code null)."""
        return cls(500, None, "The server had an error while processing your request. Sorry about that!")

    @classmethod
    def context_length(cls) -> Fail:
        """400 prompt too long for the model's context window."""
        message = "This model's maximum context length is 128000 tokens. Please shorten the messages."
        return cls(400, "context_length_exceeded", message)

    @classmethod
    def invalid_model(cls, model: str) -> Fail:
        """400 for a malformed model id (how OpenAI-compatible servers often reject unknown models)."""
        return cls(400, "invalid_model", f"invalid model ID: {model}")

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        default_type = "server_error" if self.status >= 500 else "invalid_request_error"
        error = {"message": self.message, "type": self.type or default_type, "param": None, "code": self.code}
        return {"error": error}


@dataclass(frozen=True)
class Hang:
    """Sleep ``seconds`` then reply with the default behaviour (to trigger client timeouts)."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending any response."""


@dataclass(frozen=True)
class Raw:
    """Answer with exactly this status and body (a proxy's HTML page, a body cut short)."""

    status: int
    body: str
    content_type: str = "text/html"


Step = Union[Reply, Fail, Hang, Drop, Raw]
Behaviour = Union[Step, Callable[[RecordedRequest], Step]]


class FakeOpenAI(ThreadedAiohttpServer):
    """Fake OpenAI server: point ``AsyncOpenAI(base_url=fake.api_url)`` at it."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.reset()

    @property
    def api_url(self) -> str:
        """Base URL to hand to the OpenAI client (``.../v1``)."""
        return f"{self.base_url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every chat completion request received so far."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests and restore the default configuration."""
        with self._lock:
            self._requests: list[RecordedRequest] = []
            self._scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
            self._behaviours: dict[str, Behaviour] = {}
        self.default: Behaviour = default_reply
        self.latency = 0.0
        self.models: dict[str, str | None] = dict.fromkeys(DEFAULT_MODELS)
        self.models_endpoint_enabled = True
        # When set, GET /v1/models answers with this error (e.g. Fail(401, "invalid_api_key")).
        self.models_failure: Fail | None = None

    def script(self, model: str, *steps: Behaviour) -> None:
        """Queue steps answering the next requests for ``model``, one step per request."""
        with self._lock:
            self._scripts[model].extend(steps)

    def set_behaviour(self, model: str, behaviour: Behaviour | None) -> None:
        """Answer ``model`` with ``behaviour`` whenever its script is empty (None restores the default)."""
        with self._lock:
            if behaviour is None:
                self._behaviours.pop(model, None)
            else:
                self._behaviours[model] = behaviour

    def calls_for(self, model: str) -> list[RecordedRequest]:
        """Recorded requests whose body asked for ``model``."""
        return [r for r in self.requests if r.json.get("model") == model]

    def build_app(self) -> web.Application:
        """Routes: chat completions and model listing."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._list_models)
        return app

    def _next_behaviour(self, model: str) -> Behaviour:
        with self._lock:
            queue = self._scripts.get(model)
            if queue:
                return queue.popleft()
            return self._behaviours.get(model, self.default)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        recorded = RecordedRequest(request.path, body, CIMultiDict(request.headers), time.time())
        with self._lock:
            self._requests.append(recorded)
        behaviour = self._next_behaviour(body.get("model", ""))
        step = behaviour(recorded) if callable(behaviour) else behaviour
        await asyncio.sleep(self.latency + getattr(step, "delay", 0.0))
        if isinstance(step, Hang):
            await asyncio.sleep(step.seconds)
            step = default_reply(recorded)
        if isinstance(step, Drop):
            assert request.transport is not None
            request.transport.close()
            # The closed connection cancels this handler (handler_cancellation), so nothing is sent.
            await asyncio.sleep(3600)
        if isinstance(step, Fail):
            return web.json_response(step.body(), status=step.status, headers=step.headers)
        if isinstance(step, Raw):
            return web.Response(text=step.body, status=step.status, content_type=step.content_type)
        return web.json_response(completion_body(body, step), headers=step.headers)

    async def _list_models(self, request: web.Request) -> web.Response:
        if not self.models_endpoint_enabled:
            raise web.HTTPNotFound(text="404 page not found")
        if (failure := self.models_failure) is not None:
            return web.json_response(failure.body(), status=failure.status, headers=failure.headers)
        data = [
            {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "system"}
            | ({"shutdown_date": shutdown} if shutdown else {})
            for model_id, shutdown in list(self.models.items())
        ]
        return web.json_response({"object": "list", "data": data})


def default_reply(request: RecordedRequest) -> Reply:
    """Deterministic reply: schema-valid JSON for json_schema requests, else "[model] <last user text>"."""
    body = request.json
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format["json_schema"]["schema"]
        return Reply(json.dumps(sample_for_schema(schema, schema)))
    user_texts = [_text(m.get("content")) for m in body.get("messages", []) if m.get("role") == "user"]
    return Reply(f"[{body.get('model')}] {user_texts[-1] if user_texts else ''}")


def sample_for_schema(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """Build a minimal value valid for a JSON schema (first enum value, "x", 0, False, empty arrays)."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return sample_for_schema(target, root)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return sample_for_schema(schema[key][0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: sample_for_schema(sub, root) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample_for_schema(schema.get("items", {}), root)] * schema.get("minItems", 0)
    return {"string": "x", "integer": 0, "number": 0, "boolean": False}.get(kind)


def completion_body(request_body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """Build a Chat Completions response body for ``reply``."""
    prompt_words = sum(_words(_text(m.get("content"))) for m in request_body.get("messages", []))
    prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else max(prompt_words, 1)
    completion_tokens = reply.completion_tokens if reply.completion_tokens is not None else _words(reply.text)
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": reply.text, "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }
    if request_body.get("logprobs") and reply.logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": []}
                for token, logprob in reply.logprobs
            ]
        }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request_body.get("model"),
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
        },
    }


def _text(content: Any) -> str:
    # Content is either a plain string or a list of typed parts; only text parts count.
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content or ""


def _words(text: str) -> int:
    return len(text.split())
