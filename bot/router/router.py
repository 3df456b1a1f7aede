"""The model router: calls the model, records the attempt, prices the answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal

from bot.catalog import Catalog, TokenUsage, cost_usd, estimate_wh
from bot.ports.chat import ChatModel, ChatRequest, ChatResult, ModelCallError
from bot.ports.completion import CallContext, Completion, CompletionFailed, CompletionRequest
from bot.ports.ledger import LedgerEntry, LedgerRepository

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


class ModelRouter:
    """Completer that answers on the primary model of the chain."""

    def __init__(
        self,
        model: ChatModel,
        catalog: Catalog,
        ledger: LedgerRepository,
        chain: tuple[str, ...],
        *,
        baseline_model: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._model = model
        self._catalog = catalog
        self._ledger = ledger
        self.chain = chain
        self._baseline = catalog.get(baseline_model)
        self._clock = clock

    async def complete(self, ctx: CallContext, request: CompletionRequest) -> Completion:
        """Answer on the primary model; raise CompletionFailed when it fails."""
        model_id = self.chain[0]
        try:
            result = await self._model.complete(self._chat_request(model_id, request))
        except ModelCallError as err:
            await self._record_failure(ctx, model_id, err, attempt=1)
            log.warning("model call failed: %s", err)
            raise CompletionFailed("The model could not answer just now; nothing was charged. Please try again.") from err
        return await self._record_success(ctx, model_id, result, attempt=1)

    def _chat_request(self, model_id: str, request: CompletionRequest) -> ChatRequest:
        info = self._catalog.get(model_id)
        max_tokens = request.max_tokens
        if info is not None and info.max_output_tokens:
            max_tokens = min(max_tokens, info.max_output_tokens)
        return ChatRequest(
            model=model_id,
            messages=request.messages,
            max_tokens=max_tokens,
            temperature=request.temperature,
            json_schema=request.json_schema,
            logprobs=request.logprobs,
        )

    async def _record_success(
        self, ctx: CallContext, model_id: str, result: ChatResult, *, attempt: int
    ) -> Completion:
        info = self._catalog.get(model_id)
        cost = cost_usd(info.price if info else None, result.usage)
        await self._ledger.record(
            self._entry(ctx, model_id, result.served_model, result.usage, attempt=attempt,
                        latency_ms=result.latency_ms, outcome="ok", error_code=None)
        )
        return Completion(
            text=result.text,
            requested_model=self.chain[0],
            served_model=model_id,
            usage=result.usage,
            cost_usd=cost,
            logprobs=result.logprobs,
        )

    async def _record_failure(self, ctx: CallContext, model_id: str, err: ModelCallError, *, attempt: int) -> None:
        await self._ledger.record(
            self._entry(ctx, model_id, None, TokenUsage(prompt_tokens=0), attempt=attempt,
                        latency_ms=err.latency_ms, outcome="error", error_code=err.code or err.kind.value)
        )

    def _entry(
        self,
        ctx: CallContext,
        model_id: str,
        served_model: str | None,
        usage: TokenUsage,
        *,
        attempt: int,
        latency_ms: float,
        outcome: str,
        error_code: str | None,
    ) -> LedgerEntry:
        info = self._catalog.get(model_id)
        ok = outcome == "ok"
        return LedgerEntry(
            team_id=ctx.team_id,
            channel_id=ctx.channel_id,
            user_id=ctx.user_id,
            request_key=ctx.request_key,
            task=ctx.task,
            requested_model=model_id,
            served_model=served_model,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            completion_tokens=usage.completion_tokens,
            # A failed attempt is not billed: it costs exactly nothing, not "price unknown".
            cost_usd=cost_usd(info.price if info else None, usage) if ok else Decimal(0),
            baseline_cost_usd=cost_usd(self._baseline.price if self._baseline else None, usage) if ok else Decimal(0),
            energy_wh=estimate_wh(info.energy if info else None, usage) if ok else None,
            latency_ms=latency_ms,
            outcome=outcome,
            error_code=error_code,
            attempt=attempt,
            created_at=self._clock(),
        )
