"""Scriptable fake of the OpenAI Chat Completions and Models HTTP API.

Error bodies, messages and codes follow what OpenAI's API answers (its API reference and the
error texts users have reported from it); the model table is in ``openai_models``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from ._server import ThreadedAiohttpServer
from .openai_models import DEFAULT_REASONING_TOKENS, MODEL_TABLE, ModelSpec, is_served

# The listing FakeOpenAI starts with (gateway style: listed without dates, served whatever the date).
DEFAULT_MODELS = ("gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "gpt-4o")


@dataclass(frozen=True)
class RecordedRequest:
    """One request received by the fake, with case-insensitive headers and the x-request-id it was answered with."""

    path: str
    json: dict[str, Any]
    headers: Mapping[str, str]
    at: float
    request_id: str = ""


@dataclass(frozen=True)
class Reply:
    """Answer with ``text``; token counts default to word counts, logprobs are (token, logprob) pairs.

    ``completion_tokens`` counts the visible answer; the reported ``usage.completion_tokens`` adds
    ``reasoning_tokens`` to it (default for a reasoning model: by reasoning effort, see
    ``openai_models.DEFAULT_REASONING_TOKENS``; 0 otherwise). ``refusal`` answers with
    ``message.refusal`` and ``content: null``. ``finish_reason`` forces another finish reason
    ("content_filter", "length"). ``service_tier`` overrides the tier echoed from the request.
    """

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    logprobs: list[tuple[str, float]] | None = None
    headers: dict[str, str] | None = None
    delay: float = 0.0
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    service_tier: str | None = None

    @classmethod
    def refused(cls, message: str = "I'm sorry, but I can't help with that.") -> Reply:
        """The model declines: ``content`` is null and ``message.refusal`` says why."""
        return cls("", refusal=message)

    @classmethod
    def content_filtered(cls, partial: str = "") -> Reply:
        """``finish_reason: "content_filter"``; ``content`` is null unless part of it was kept."""
        return cls(partial, finish_reason="content_filter")


@dataclass(frozen=True)
class Fail:
    """Answer with an OpenAI-shaped error body and the given HTTP status and headers."""

    status: int
    code: str | None
    message: str = "Simulated failure"
    type: str | None = None
    headers: dict[str, str] | None = None
    delay: float = 0.0
    param: str | None = None

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
        """404 for a model that does not exist, is not accessible, or has been shut down."""
        message = f"The model `{model}` does not exist or you do not have access to it."
        return cls(404, "model_not_found", message)

    @classmethod
    def no_model_access(cls, model: str, project: str = "proj_abc") -> Fail:
        """403 for one model the project may not use (the key itself is fine)."""
        return cls(403, "model_not_found", f"Project `{project}` does not have access to model `{model}`")

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

    @classmethod
    def unsupported_parameter(cls, param: str, advice: str = "") -> Fail:
        """400 for a parameter this model refuses (``advice`` is appended, e.g. what to use instead)."""
        message = f"Unsupported parameter: '{param}' is not supported with this model.{advice}"
        return cls(400, "unsupported_parameter", message, param=param)

    @classmethod
    def unsupported_value(cls, param: str, value: Any, supported: str) -> Fail:
        """400 for a value this model refuses; ``supported`` is the sentence naming what it takes."""
        message = f"Unsupported value: '{param}' does not support {_literal(value)} with this model. {supported}"
        return cls(400, "unsupported_value", message, param=param)

    @classmethod
    def unrecognized_argument(cls, name: str) -> Fail:
        """400 for a request field this model does not know at all (param and code null)."""
        return cls(400, None, f"Unrecognized request argument supplied: {name}")

    @classmethod
    def invalid_url(cls, method: str, path: str) -> Fail:
        """404 for a path the API does not have (a wrong base URL): no error code."""
        return cls(404, None, f"Invalid URL ({method} {path})")

    @classmethod
    def flex_unavailable(cls) -> Fail:
        """429 when flex processing has no capacity for the request right now."""
        return cls(429, "resource_unavailable", "Resource unavailable")

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        default_type = "server_error" if self.status >= 500 else "invalid_request_error"
        error = {"message": self.message, "type": self.type or default_type, "param": self.param, "code": self.code}
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


Step = Reply | Fail | Hang | Drop | Raw
Behaviour = Step | Callable[[RecordedRequest], Step]


class FakeOpenAI(ThreadedAiohttpServer):
    """Fake OpenAI server: point ``AsyncOpenAI(base_url=fake.api_url)`` at it.

    Two ways to decide which models exist. Gateway style (the default, ``models`` is a dict): GET
    /v1/models lists exactly ``models`` (id → shutdown date or None) and chat answers any model,
    past its date too, as Azure, gateways and dedicated capacity do. OpenAI style (``models`` is
    None, see ``serve_like_openai``): the ``catalogue`` and ``today`` decide; a model past its
    shutdown date, or one the catalogue does not know, is not listed and answers 404. In both,
    chat calls to a catalogue model are checked the way OpenAI checks them (reasoning models
    refuse ``max_tokens``, a non-default temperature, ...).
    """

    def __init__(self, *, like_openai: bool = False, today: date | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._like_openai = like_openai
        self._initial_today = today
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

    @property
    def listing_requests(self) -> list[RecordedRequest]:
        """Snapshot of every GET /v1/models (and /v1/models/{id}) request received so far."""
        with self._lock:
            return list(self._listing_requests)

    def reset(self) -> None:
        """Forget recorded requests and restore the configuration the fake was built with."""
        with self._lock:
            self._requests: list[RecordedRequest] = []
            self._listing_requests: list[RecordedRequest] = []
            self._scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
            self._behaviours: dict[str, Behaviour] = {}
        self.default: Behaviour = default_reply
        self.latency = 0.0
        self.catalogue: dict[str, ModelSpec] = dict(MODEL_TABLE)
        self.today: date | None = self._initial_today
        self.models: dict[str, str | None] | None = None if self._like_openai else dict.fromkeys(DEFAULT_MODELS)
        self.models_endpoint_enabled = True
        # When set, GET /v1/models answers with this error (e.g. Fail(401, "invalid_api_key")).
        self.models_failure: Fail | None = None
        self.flex_available = True

    def current_date(self) -> date:
        """The fake's today: ``today`` when set, else the real current date (UTC)."""
        return self.today or datetime.now(UTC).date()

    def serve_like_openai(self, today: date | None = None) -> None:
        """List and serve what OpenAI does on ``today`` (or the fake's today): the catalogue minus shut-down models."""
        self.models = None
        if today is not None:
            self.today = today

    def serve_like_gateway(self, *model_ids: str) -> None:
        """List ``model_ids`` with the catalogue's shutdown dates, and serve every model past its date too."""
        self.models = {model_id: _iso(self._spec(model_id)) for model_id in model_ids}

    def listed_models(self) -> dict[str, str | None]:
        """What GET /v1/models lists right now: model id → shutdown date (YYYY-MM-DD) or None."""
        if self.models is not None:
            return dict(self.models)
        today = self.current_date()
        return {model_id: _iso(spec) for model_id, spec in list(self.catalogue.items()) if is_served(spec, today)}

    def serves(self, model: str) -> bool:
        """Whether a chat call to ``model`` reaches the model (else it answers 404 model_not_found)."""
        return self.models is not None or is_served(self._spec(model), self.current_date())

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
        """Recorded requests whose body asked for ``model`` (refused ones included)."""
        return [r for r in self.requests if r.json.get("model") == model]

    def build_app(self) -> web.Application:
        """Routes: chat completions, model listing and retrieval; anything else is OpenAI's Invalid URL 404."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._retrieve_model)
        app.router.add_route("*", "/{tail:.*}", self._invalid_url)
        return app

    def _spec(self, model: str) -> ModelSpec | None:
        return self.catalogue.get(model)

    def _next_behaviour(self, model: str) -> Behaviour:
        with self._lock:
            queue = self._scripts.get(model)
            if queue:
                return queue.popleft()
            return self._behaviours.get(model, self.default)

    def _record(self, request: web.Request, body: dict[str, Any], into: list[RecordedRequest]) -> RecordedRequest:
        recorded = RecordedRequest(request.path, body, CIMultiDict(request.headers), time.time(), _request_id())
        with self._lock:
            into.append(recorded)
        return recorded

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        recorded = self._record(request, body, self._requests)
        model = body.get("model", "")
        spec = self._spec(model)
        if not self.serves(model):
            return _error(Fail.model_not_found(model), recorded)
        if (refusal := request_refusal(spec, body)) is not None:
            return _error(refusal, recorded)
        if body.get("service_tier") == "flex" and not self.flex_available:
            return _error(Fail.flex_unavailable(), recorded)
        behaviour = self._next_behaviour(model)
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
            return _error(step, recorded)
        if isinstance(step, Raw):
            return web.Response(text=step.body, status=step.status, content_type=step.content_type)
        headers = {"x-request-id": recorded.request_id, **(step.headers or {})}
        return web.json_response(completion_body(body, step, spec), headers=headers)

    async def _list_models(self, request: web.Request) -> web.Response:
        recorded = self._record(request, {}, self._listing_requests)
        if not self.models_endpoint_enabled:
            raise web.HTTPNotFound(text="404 page not found")
        if (failure := self.models_failure) is not None:
            return _error(failure, recorded)
        data = [self._model_object(model_id, shutdown) for model_id, shutdown in self.listed_models().items()]
        return _json({"object": "list", "data": data}, recorded)

    async def _retrieve_model(self, request: web.Request) -> web.Response:
        recorded = self._record(request, {}, self._listing_requests)
        if not self.models_endpoint_enabled:
            raise web.HTTPNotFound(text="404 page not found")
        if (failure := self.models_failure) is not None:
            return _error(failure, recorded)
        model_id = request.match_info["model"]
        listed = self.listed_models()
        if model_id not in listed:
            return _error(Fail.model_not_found(model_id), recorded)
        return _json(self._model_object(model_id, listed[model_id]), recorded)

    async def _invalid_url(self, request: web.Request) -> web.Response:
        recorded = RecordedRequest(request.path, {}, CIMultiDict(request.headers), time.time(), _request_id())
        return _error(Fail.invalid_url(request.method, request.path), recorded)

    def _model_object(self, model_id: str, shutdown: str | None) -> dict[str, Any]:
        spec = self._spec(model_id)
        created = spec.created if spec is not None else 1700000000
        return {"id": model_id, "object": "model", "created": created, "owned_by": "system", "shutdown_date": shutdown}


def request_refusal(spec: ModelSpec | None, body: dict[str, Any]) -> Fail | None:
    """The 400 OpenAI answers a chat request to this model with, or None if it accepts it.

    A model outside the catalogue is accepted as sent (an OpenAI-compatible server's own model).
    """
    if spec is None:
        return None
    if not spec.reasoning:
        if body.get("reasoning_effort") is not None:
            return Fail.unrecognized_argument("reasoning_effort")
        return None
    if body.get("max_tokens") is not None:
        return Fail.unsupported_parameter("max_tokens", " Use 'max_completion_tokens' instead.")
    if "reasoning_effort" in body and body["reasoning_effort"] not in spec.efforts:
        supported = f"Supported values are: {_listing(spec.efforts)}."
        return Fail.unsupported_value("reasoning_effort", body["reasoning_effort"], supported)
    # Sampling parameters and logprobs are only accepted while the model does not reason.
    not_reasoning = effort_of(spec, body) == "none"
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1 and not not_reasoning:
        return Fail.unsupported_value("temperature", temperature, "Only the default (1) value is supported.")
    if body.get("logprobs") and not (spec.logprobs and not_reasoning):
        return Fail.unsupported_parameter("logprobs")
    return None


def effort_of(spec: ModelSpec | None, body: dict[str, Any]) -> str | None:
    """The reasoning effort a request runs at: the one it names, else the model's default."""
    if spec is None or not spec.reasoning:
        return None
    return body.get("reasoning_effort") or spec.default_effort


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


def completion_body(request_body: dict[str, Any], reply: Reply, spec: ModelSpec | None = None) -> dict[str, Any]:
    """Build a Chat Completions response body for ``reply`` from a model described by ``spec``.

    A reasoning model spends its reasoning tokens out of ``max_completion_tokens``: what does not
    fit is cut from the answer (all of it when reasoning alone fills the limit), with
    ``finish_reason: "length"``.
    """
    prompt_words = sum(_words(_text(m.get("content"))) for m in request_body.get("messages", []))
    prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else max(prompt_words, 1)
    spoken = reply.refusal if reply.refusal is not None else reply.text
    answer_tokens = reply.completion_tokens if reply.completion_tokens is not None else _words(spoken)
    reasoning = spec is not None and spec.reasoning
    effort = effort_of(spec, request_body)
    reasoning_tokens = reply.reasoning_tokens
    if reasoning_tokens is None:
        reasoning_tokens = DEFAULT_REASONING_TOKENS.get(effort or "", 0) if reasoning else 0
    text, finish_reason = reply.text, reply.finish_reason
    limit = request_body.get("max_completion_tokens") if reasoning else None
    if limit is not None and reasoning_tokens + answer_tokens > limit:
        reasoning_tokens = min(reasoning_tokens, limit)
        kept = limit - reasoning_tokens
        words = text.split()
        text = " ".join(words[: len(words) * kept // answer_tokens]) if answer_tokens else ""
        answer_tokens, finish_reason = kept, "length"
    declined = reply.refusal is not None or (finish_reason == "content_filter" and not text)
    message = {"role": "assistant", "content": None if declined else text, "refusal": reply.refusal}
    choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    if request_body.get("logprobs") and reply.logprobs is not None and not declined:
        choice["logprobs"] = {
            "content": [
                {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": []}
                for token, logprob in reply.logprobs
            ],
            "refusal": None,
        }
    completion_tokens = answer_tokens + reasoning_tokens
    prompt_details: dict[str, int] = {"cached_tokens": reply.cached_tokens, "audio_tokens": 0}
    if reply.cache_write_tokens is not None:
        prompt_details["cache_write_tokens"] = reply.cache_write_tokens
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
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": reply.service_tier or _served_tier(request_body.get("service_tier")),
        "system_fingerprint": "fp_fake0openai",
    }


def _served_tier(requested: str | None) -> str:
    # "auto" runs on the project's tier ("default" unless configured); "fast" is reported as "priority".
    return {None: "default", "auto": "default", "fast": "priority"}.get(requested, requested or "default")


def _error(fail: Fail, recorded: RecordedRequest) -> web.Response:
    headers = {"x-request-id": recorded.request_id, **(fail.headers or {})}
    return web.json_response(fail.body(), status=fail.status, headers=headers)


def _json(body: dict[str, Any], recorded: RecordedRequest) -> web.Response:
    return web.json_response(body, headers={"x-request-id": recorded.request_id})


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def _iso(spec: ModelSpec | None) -> str | None:
    return spec.shutdown_date.isoformat() if spec is not None and spec.shutdown_date else None


def _literal(value: Any) -> str:
    # The API quotes strings and writes other values as JSON ("0.2", "null").
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def _listing(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _text(content: Any) -> str:
    # Content is either a plain string or a list of typed parts; only text parts count.
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content or ""


def _words(text: str) -> int:
    return len(text.split())
