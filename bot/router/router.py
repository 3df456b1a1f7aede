"""The model router: tries the chain in order, following the error table, and prices every attempt."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from bot.catalog import CallShape, Catalog, TokenUsage, output_cap
from bot.ports.alerts import AdminAlerts
from bot.ports.chat import ChatModel, ChatRequest, ChatResult, ErrorKind, ModelCallError
from bot.ports.completion import CallContext, Completion, CompletionFailed, CompletionRequest
from bot.ports.ledger import LedgerEntry, LedgerRepository
from bot.ports.model_status import ModelHealth, ModelStatusStore, RetiredModels, UnavailableModel
from bot.router.accounting import price_call
from bot.router.health import HealthBoard
from bot.router.policy import ALL_FAILED_ALERT, POLICY, RETIRED_WHY, RouterTuning, Then, Wait

log = logging.getLogger(__name__)

NOT_ALLOWED = "is not allowed for this request"


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


async def _sleep(delay: timedelta) -> None:
    await asyncio.sleep(delay.total_seconds())


@dataclass(frozen=True)
class _Learned:
    """What the endpoint's errors taught about one model's requests."""

    shape: CallShape
    no_logprobs: bool = False
    no_json: bool = False

    @classmethod
    def of(cls, adapted: ChatRequest, before: _Learned | None) -> _Learned:
        """The lesson of a request adapted after an error, on top of what was known before."""
        return cls(
            shape=adapted.shape,
            no_logprobs=(before is not None and before.no_logprobs) or not adapted.logprobs,
            no_json=(before is not None and before.no_json) or adapted.json_schema is None,
        )


@dataclass
class _Trail:
    """What happened to one request so far: attempts made and why each model did not answer."""

    attempts: int = 0
    why: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, ErrorKind] = field(default_factory=dict)
    exceeded_window: int | None = None  # set once a model's context window was too small
    too_long: bool = False
    retired: set[str] = field(default_factory=set)  # skipped without a call


class ModelRouter:
    """Completer over the model chain: retries, fail-over, cool-downs, and a ledger row per attempt."""

    def __init__(
        self,
        model: ChatModel,
        catalog: Catalog,
        ledger: LedgerRepository,
        chain: tuple[str, ...],
        *,
        baseline_model: str,
        clock: Callable[[], datetime] = utcnow,
        status_store: ModelStatusStore | None = None,
        alerts: AdminAlerts | None = None,
        tuning: RouterTuning = RouterTuning(),
        sleep: Callable[[timedelta], Awaitable[None]] = _sleep,
        retired: RetiredModels | None = None,
    ) -> None:
        if not chain:
            raise ValueError("the model chain is empty")
        self._model = model
        self._catalog = catalog
        self._ledger = ledger
        self.chain = chain
        self._baseline = baseline_model
        self._clock = clock
        self._status_store = status_store
        self._alerts = alerts
        self._tuning = tuning
        self._sleep = sleep
        self._health = HealthBoard(chain, tuning, status_store)
        self._retired = retired or RetiredModels()
        # How a model turned out to take a request, where the catalog was wrong or silent (adapt_shape).
        self._learned: dict[str, _Learned] = {}

    async def complete(self, ctx: CallContext, request: CompletionRequest) -> Completion:
        """Answer on the first model of the chain that can; raise CompletionFailed when none can."""
        await self._health.sync(self._clock())
        candidates = self._candidates(request.allowed_models)
        trail = _Trail()
        for model in candidates:
            if self._retired.get(model) is not None:
                # Retired: skipped without a call (and without a fallback line: nothing transient happened).
                trail.retired.add(model)
                trail.why[model] = RETIRED_WHY
                continue
            if trail.too_long and not self._may_fit(model, trail.exceeded_window):
                trail.why[model] = POLICY[ErrorKind.CONTEXT_TOO_LONG].why
                continue
            if not self._health.admit(model, self._clock()):
                kind = self._health.reason(model)
                trail.why[model] = POLICY[kind].why if kind else "is resting"
                if kind:
                    trail.kinds[model] = kind
                continue
            try:
                outcome = await self._try(ctx, model, request, trail)
            finally:
                self._health.release(model)
            if isinstance(outcome, Completion):
                return outcome
        await self._alert_all_failed(ctx, candidates, trail)
        raise CompletionFailed(self._failure_message(candidates, trail))

    async def model_health(self) -> list[ModelHealth]:
        """The health of every model in the chain, in chain order."""
        now = self._clock()
        await self._health.sync(now)
        return self._health.snapshot(now)

    async def clear_mark(self, model: str) -> bool:
        """Forget that a model was unavailable or resting (an admin's `/frugal models retry`); False if it was healthy."""
        model = self._canonical(model)
        if model not in self.chain:
            raise ValueError(f"{model!r} is not in the model chain")
        await self._health.sync(self._clock())
        had = self._health.until(model) is not None
        self._health.forget(model)
        if self._status_store is not None:
            await self._status_store.clear(model)
        return had

    async def _try(
        self, ctx: CallContext, model: str, request: CompletionRequest, trail: _Trail
    ) -> Completion | ModelCallError:
        """Call one model, retrying as the policy allows; a Completion, or the last error after acting on it."""
        chat_request = self._chat_request(model, request)
        retries = 0
        while True:
            trail.attempts += 1
            started = time.monotonic()
            try:
                result = await self._model.complete(chat_request)
            except asyncio.CancelledError:
                # Cut off mid-call (a stop's deadline): the endpoint may bill the call all the same.
                await self._record_interrupted(ctx, model, trail.attempts, started)
                raise
            except ModelCallError as err:
                await self._ledger.record(self._failure_entry(ctx, model, err, trail.attempts))
                if chat_request.service_tier == "flex" and _flex_unavailable(err):
                    # Flex may have no capacity, or be slow: the same model answers on the default tier.
                    log.info(
                        "model %s: flex tier unavailable (%s); trying the default tier",
                        model,
                        err.code or err.kind.value,
                    )
                    chat_request = dataclasses.replace(chat_request, service_tier=None)
                    continue
                adapted = adapt_shape(chat_request, err) if err.kind is ErrorKind.UNSUPPORTED_PARAMETER else None
                if adapted is not None:
                    # The endpoint said how this model takes a request: ask that way, and remember it.
                    log.info("model %s refused %s; calling it as the error asks", model, err.param or err.code)
                    chat_request = adapted
                    self._learned[model] = _Learned.of(adapted, self._learned.get(model))
                    continue
                now = self._clock()
                mark = self._health.failed(model, err.kind, now, self._hold(err))
                rule = POLICY[err.kind]
                wait = self._wait(rule.wait, err, retries) if retries < rule.retries else None
                # Once the model is resting, a retry would only spend the user's time.
                if wait is not None and self._health.until(model) is None:
                    retries += 1
                    await self._sleep(wait)
                    continue
                await self._after_failure(ctx, model, err, trail, mark)
                return err
            return await self._answered(ctx, model, result, trail)

    async def _record_interrupted(self, ctx: CallContext, model: str, attempt: int, started: float) -> None:
        """Record a call cancelled before it answered, even if the caller is cancelled again meanwhile."""
        entry = self._entry(
            ctx,
            model,
            None,
            TokenUsage(prompt_tokens=0),
            attempt,
            latency_ms=(time.monotonic() - started) * 1000,
            outcome="interrupted",
            error_code=None,
            # What the endpoint bills for a call it never answered is not known: not zero, unknown.
            cost=None,
            baseline_cost=None,
            energy_wh=None,
        )
        recording = asyncio.ensure_future(self._ledger.record(entry))
        recording.add_done_callback(_log_lost_row)
        # A failure is logged by _log_lost_row; cancelled once more, the row is still written, only not awaited.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([recording])

    def _wait(self, wait: Wait | None, err: ModelCallError, retries: int) -> timedelta | None:
        """How long to wait before retrying; None when a retry is not worth it."""
        if wait is Wait.BACKOFF:
            return self._tuning.backoff * 2**retries
        if wait is Wait.RETRY_AFTER:
            told = (
                timedelta(seconds=err.retry_after) if err.retry_after is not None else self._tuning.default_retry_wait
            )
            return told if told <= self._tuning.max_retry_wait else None
        return None

    def _hold(self, err: ModelCallError) -> timedelta | None:
        """A throttle longer than is worth waiting for: rest the model until the server says."""
        if err.kind is ErrorKind.RATE_LIMITED and err.retry_after is not None:
            told = timedelta(seconds=err.retry_after)
            return told if told > self._tuning.max_retry_wait else None
        return None

    async def _after_failure(
        self, ctx: CallContext, model: str, err: ModelCallError, trail: _Trail, mark: UnavailableModel | None
    ) -> None:
        rule = POLICY[err.kind]
        if mark is not None and self._status_store is not None:
            await self._status_store.mark_unavailable(mark)
        trail.why[model] = rule.why
        trail.kinds[model] = err.kind
        log.warning(
            "model %s failed (%s, request id %s); next: %s",
            model,
            err,
            err.request_id or "none",
            rule.then.name.lower(),
        )
        if rule.alert is not None and self._alerts is not None:
            status = f"HTTP {err.status}" if err.status else ""
            text = rule.alert.format(model=model, status=status, code=err.code or err.kind.value)
            if err.request_id:
                text += f" (OpenAI request ID {err.request_id})"
            await self._alerts.alert(ctx.team_id, text, dedupe_key=f"{model}:{err.kind.value}")
        if rule.then is Then.LARGER_CONTEXT:
            info = self._catalog.get(model)
            window = info.context_window if info else None
            trail.too_long = True
            trail.exceeded_window = max(trail.exceeded_window or 0, window or 0) or None
        elif rule.then is Then.STOP:
            raise CompletionFailed(
                f"Frugal cannot use its models right now: the endpoint {rule.why}. "
                "The admins have been told. Nothing was charged."
            )

    async def _answered(self, ctx: CallContext, model: str, result: ChatResult, trail: _Trail) -> Completion:
        if self._health.succeeded(model) and self._status_store is not None:
            await self._status_store.clear(model)
        now = self._clock()
        priced = price_call(
            self._catalog, model, self._baseline, result.usage, service_tier=result.service_tier, at=now
        )
        refusal = result.refusal
        if refusal is None and result.finish_reason == "content_filter":
            refusal = "A content filter stopped the answer."
        await self._ledger.record(
            self._entry(
                ctx,
                model,
                result.served_model,
                result.usage,
                trail.attempts,
                latency_ms=result.latency_ms,
                outcome="refused" if refusal else "ok",
                error_code=None,
                cost=priced.cost_usd,
                baseline_cost=priced.baseline_cost_usd,
                energy_wh=priced.energy_wh,
                service_tier=result.service_tier,
            )
        )
        return Completion(
            text=result.text,
            requested_model=self.chain[0],
            served_model=model,
            usage=result.usage,
            cost_usd=priced.cost_usd,
            logprobs=result.logprobs,
            fallback_note=self._fallback_note(model, trail),
            baseline_cost_usd=priced.baseline_cost_usd,
            energy_wh=priced.energy_wh,
            energy_source=priced.energy_source,
            finish_reason=result.finish_reason,
            refusal=refusal,
            service_tier=result.service_tier,
        )

    def _candidates(self, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
        if allowed is None:
            return self.chain
        wanted = {self._canonical(name) for name in allowed}
        candidates = tuple(model for model in self.chain if model in wanted)
        if not candidates:
            raise CompletionFailed("No model may be used for this request, so nothing was called or charged.")
        return candidates

    def _canonical(self, name: str) -> str:
        info = self._catalog.get(name)
        return info.id if info else name

    def _may_fit(self, model: str, exceeded_window: int | None) -> bool:
        """Worth trying after a context-length failure: a larger (or unknown) window."""
        info = self._catalog.get(model)
        window = info.context_window if info else None
        return window is None or exceeded_window is None or window > exceeded_window

    def _chat_request(self, model: str, request: CompletionRequest) -> ChatRequest:
        info = self._catalog.get(model)
        learned = self._learned.get(model)
        shape = learned.shape if learned else (info.call if info else CallShape())
        max_tokens = output_cap(self._catalog, model, request.max_tokens)
        # A model not known to support structured output or log-probabilities would reject them;
        # one the catalog does not know is asked, and what it refuses is not asked again.
        structured = (info.supports_structured_output if info else True) and not (learned and learned.no_json)
        logprobs = (info.supports_logprobs if info else True) and not (learned and learned.no_logprobs)
        return ChatRequest(
            model=model,
            messages=request.messages,
            max_tokens=max_tokens,
            temperature=request.temperature,
            json_schema=request.json_schema if structured else None,
            logprobs=request.logprobs and logprobs,
            shape=shape,
            service_tier=request.service_tier,
        )

    def _fallback_note(self, served: str, trail: _Trail) -> str | None:
        """Why a later model answered; none when the models before it are retired (nothing transient happened)."""
        primary = next((m for m in self.chain if m not in trail.retired), None)
        if primary is None or served == primary:
            return None
        return f"{served} answered because {primary} {trail.why.get(primary, NOT_ALLOWED)}"

    def _failure_message(self, candidates: tuple[str, ...], trail: _Trail) -> str:
        kinds = set(trail.kinds.values())
        if trail.too_long and kinds <= {ErrorKind.CONTEXT_TOO_LONG}:
            return "The text is too long for every model Frugal may use. Please shorten it; nothing was charged."
        if kinds == {ErrorKind.NO_CREDIT}:
            return (
                "Frugal's OpenAI account is out of credit, so no model could answer; the admins have been told. "
                "Nothing was charged."
            )
        reasons = "; ".join(f"{model} {trail.why[model]}" for model in candidates if model in trail.why)
        return (
            f"No model could answer just now ({reasons}). Nothing was charged. "
            f"Please try again {self._when_to_retry(candidates)}."
        )

    def _when_to_retry(self, candidates: tuple[str, ...]) -> str:
        now = self._clock()
        waits = [until - now for model in candidates if (until := self._health.until(model)) and until > now]
        if not waits:
            return "in a minute"
        return f"in about {_duration(min(waits))}"

    async def _alert_all_failed(self, ctx: CallContext, candidates: tuple[str, ...], trail: _Trail) -> None:
        if self._alerts is None:
            return
        summary = "; ".join(f"{model} {trail.why[model]}" for model in candidates if model in trail.why)
        await self._alerts.alert(ctx.team_id, ALL_FAILED_ALERT.format(summary=summary), dedupe_key="all-models-failed")

    def _failure_entry(self, ctx: CallContext, model: str, err: ModelCallError, attempt: int) -> LedgerEntry:
        # A failed attempt is not billed: it costs exactly nothing, not "price unknown".
        return self._entry(
            ctx,
            model,
            None,
            TokenUsage(prompt_tokens=0),
            attempt,
            latency_ms=err.latency_ms,
            outcome="error",
            error_code=err.code or err.kind.value,
            cost=Decimal(0),
            baseline_cost=Decimal(0),
            energy_wh=None,
        )

    def _entry(
        self,
        ctx: CallContext,
        model: str,
        served_model: str | None,
        usage: TokenUsage,
        attempt: int,
        *,
        latency_ms: float,
        outcome: str,
        error_code: str | None,
        cost: Decimal | None,
        baseline_cost: Decimal | None,
        energy_wh: float | None,
        service_tier: str | None = None,
    ) -> LedgerEntry:
        return LedgerEntry(
            team_id=ctx.team_id,
            channel_id=ctx.channel_id,
            user_id=ctx.user_id,
            request_key=ctx.request_key,
            task=ctx.task,
            requested_model=model,
            served_model=served_model,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=cost,
            baseline_cost_usd=baseline_cost,
            energy_wh=energy_wh,
            latency_ms=latency_ms,
            outcome=outcome,
            error_code=error_code[:64] if error_code else None,
            attempt=attempt,
            created_at=self._clock(),
            reasoning_tokens=usage.reasoning_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            service_tier=service_tier,
        )


def _log_lost_row(recording: asyncio.Future[None]) -> None:
    if not recording.cancelled() and (err := recording.exception()) is not None:
        log.error("could not record a model call cut off by a stop (%s)", type(err).__name__)


# How reasoning models take the output cap and temperature (docs/models.md).
_REASONING = {"token_parameter": "max_completion_tokens", "temperature": False}


def _flex_unavailable(err: ModelCallError) -> bool:
    """Flex processing refused or took too long: 429 resource_unavailable, or a timeout (docs/models.md)."""
    return err.kind is ErrorKind.TIMEOUT or (err.kind is ErrorKind.RATE_LIMITED and err.code == "resource_unavailable")


def adapt_shape(request: ChatRequest, err: ModelCallError) -> ChatRequest | None:
    """The request as the endpoint's 400 unsupported_parameter / unsupported_value asks, or None if nothing is left to change."""
    shape = request.shape
    param = err.param or ""
    if param.startswith(("max_tokens", "temperature")) or not param:
        # "Use 'max_completion_tokens' instead" / "Only the default (1) value is supported": a reasoning
        # model, which takes neither; every current OpenAI model accepts this shape.
        if shape.token_parameter == "max_tokens" or shape.temperature:
            return dataclasses.replace(request, shape=dataclasses.replace(shape, **_REASONING))
        return None
    if param.startswith("reasoning_effort") and shape.reasoning_effort is not None:
        return dataclasses.replace(request, shape=dataclasses.replace(shape, reasoning_effort=None))
    if param.startswith(("logprobs", "top_logprobs")) and request.logprobs:
        return dataclasses.replace(request, logprobs=False)
    if param.startswith("response_format") and request.json_schema is not None:
        return dataclasses.replace(request, json_schema=None)
    return None


def _duration(delta: timedelta) -> str:
    seconds = max(1, round(delta.total_seconds()))
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"
