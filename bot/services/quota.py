"""Quotas: limits per channel, workspace default and user; reserve the worst case, then settle."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.catalog import Catalog, output_cap, worst_case_cost_usd
from bot.ports.alerts import QuotaAlert, QuotaAlerts
from bot.ports.completion import CallContext, Completer, Completion, CompletionFailed, CompletionRequest
from bot.ports.quota import Metric, Period, QuotaUse
from bot.ports.quota_store import (
    CounterState,
    DuplicateReservation,
    FiredAlert,
    Level,
    LimitRecord,
    QuotaStore,
    Reservation,
    ReserveRequest,
    Scope,
    Usage,
)
from bot.services.quota_spec import Limit, format_amount, next_period_start, period_starts

log = logging.getLogger(__name__)

# Longer than the router's worst case (timeouts × retries over the chain), so only a crashed
# process's hold ever expires.
DEFAULT_HOLD_FOR = timedelta(minutes=10)
# Chat formatting adds a few tokens per message (role, separators) and a few to prime the reply.
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_REPLY = 3


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


class QuotaExceeded(CompletionFailed):
    """A request refused before any model was called, because a limit has no room for it."""

    def __init__(self, use: QuotaUse, tz: ZoneInfo) -> None:
        self.use = use
        super().__init__(refusal_text(use, tz))


def refusal_text(use: QuotaUse, tz: ZoneInfo) -> str:
    """Which limit refused, what is used of it, when it resets, and that nothing was charged."""
    limit = format_amount(use.metric, use.limit)
    used = _amount_words(use.metric, use.used)
    held = ""
    if use.reserved > 0:
        held = f", {_amount_words(use.metric, use.reserved)} held by requests in progress"
    local = use.resets_at.astimezone(tz)
    resets = f"{local:%a} {local.day} {local:%b %H:%M}"
    return (
        f"{_owner(use)} limit of {limit} per {use.period.value} has no room for this request "
        f"({used} of {limit} used{held}); it resets on {resets} ({tz.key}). Nothing was charged."
    )


def _amount_words(metric: Metric, amount: Decimal) -> str:
    return format_amount(metric, amount) if metric is Metric.USD else f"{int(amount):,}"


def _owner(use: QuotaUse) -> str:
    if use.scope == Scope.USER.value:
        return "Your" if use.target else "The workspace's per-person"
    if use.scope == Scope.DEFAULT.value:
        return "The workspace's per-channel"
    return "This channel's"


def downgrade_note(use: QuotaUse, model: str) -> str:
    """One line for the reply: a limit is past its downgrade share, so only the cheapest model was used."""
    limit = f"{format_amount(use.metric, use.limit)} per {use.period.value}"
    return (
        f"{_owner(use).lower()} limit of {limit} is past "
        f"{use.downgrade} %, so only the cheapest model ({model}) was used"
    )


def prompt_token_bound(request: CompletionRequest) -> int:
    """A true upper bound of the prompt's tokens: byte-level BPE never makes more tokens than bytes."""
    size = _TOKENS_PER_REPLY
    for message in request.messages:
        size += _TOKENS_PER_MESSAGE + sum(len(str(value).encode("utf-8")) for value in message.values())
    if request.json_schema is not None:
        # Structured output puts the schema into the prompt.
        size += len(json.dumps(request.json_schema).encode("utf-8"))
    return size


class QuotaService:
    """Limits, reservations around model calls, and the quota read port (QuotaReader)."""

    def __init__(
        self,
        store: QuotaStore,
        catalog: Catalog,
        chain: tuple[str, ...],
        *,
        tz: ZoneInfo,
        clock: Callable[[], datetime] = utcnow,
        hold_for: timedelta = DEFAULT_HOLD_FOR,
        alerts: QuotaAlerts | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._chain = chain
        self._tz = tz
        self._clock = clock
        self._hold_for = hold_for
        self._alerts = alerts

    @property
    def tz(self) -> ZoneInfo:
        """The zone quota periods are counted in."""
        return self._tz

    def gate(self, completer: Completer) -> Completer:
        """The completer behind the quotas: reserve, complete on what fits, then settle or release."""
        return _GatedCompleter(self, completer)

    async def set_limit(self, team_id: str, scope: Scope, target: str, limit: Limit, *, set_by: str) -> None:
        """Create or replace a limit; this period's counter starts from what the ledger says was used."""
        now = self._clock()
        record = LimitRecord(
            scope,
            _target(scope, target),
            limit.metric,
            limit.period,
            limit.amount,
            mode=limit.mode,
            alerts=limit.alerts,
            downgrade=limit.downgrade,
        )
        await self._store.set_limit(team_id, record, set_by=set_by, starts=period_starts(now, self._tz), now=now)

    async def clear(
        self, team_id: str, scope: Scope, target: str, metric: Metric | None = None, period: Period | None = None
    ) -> int:
        """Remove the target's limits (or only the one of that metric and period); how many were removed."""
        return await self._store.clear_limits(team_id, scope, _target(scope, target), metric, period)

    async def limits(self, team_id: str, scope: Scope, target: str) -> list[LimitRecord]:
        """The limits set on exactly this target."""
        return await self._store.limits(team_id, scope, _target(scope, target))

    async def channel_quotas(self, team_id: str, channel_id: str, at: datetime) -> list[QuotaUse]:
        """Every limit that applies to the channel (its own and the default), with its use at `at`."""
        await self.expire()
        counters = await self._store.applicable(team_id, channel_id, None, period_starts(at, self._tz))
        return [self._use(counter) for counter in counters]

    async def user_quotas(self, team_id: str, user_id: str, at: datetime) -> list[QuotaUse]:
        """The per-person limits that apply to a user (their own, or the per-person default), with use at `at`."""
        await self.expire()
        counters = await self._store.applicable_to_user(team_id, user_id, period_starts(at, self._tz))
        return [self._use(counter) for counter in counters]

    async def expire(self) -> int:
        """Settle reservations left by crashed processes to what the ledger recorded; how many."""
        return await self._store.expire(self._clock())

    # --- reserve and settle ---------------------------------------------------------------

    def levels(self, request: CompletionRequest, models: tuple[str, ...]) -> tuple[Level, ...]:
        """One worst case per prefix of `models`, cumulative so each is at least the one before."""
        prompt = prompt_token_bound(request)
        levels: list[Level] = []
        tokens, usd = 0, Decimal(0)
        for model in models:
            # What the router will ask for: the answer's cap plus a reasoning model's thinking.
            output = output_cap(self._catalog, model, request.max_tokens)
            cost = worst_case_cost_usd(self._catalog, model, prompt, output)
            tokens = max(tokens, prompt + output)
            usd = None if usd is None or cost is None else max(usd, cost)
            levels.append(Level(tokens=tokens, usd=usd))
        return tuple(levels)

    def cheapest(self, request: CompletionRequest, models: tuple[str, ...]) -> tuple[str, Level]:
        """The model whose worst case for this request costs least (an unknown price counts as most)."""
        prompt = prompt_token_bound(request)
        options = []
        for position, model in enumerate(models):
            output = output_cap(self._catalog, model, request.max_tokens)
            cost = worst_case_cost_usd(self._catalog, model, prompt, output)
            options.append((cost is None, cost or Decimal(0), position, model, Level(prompt + output, cost)))
        *_, model, level = min(options)
        return model, level

    def candidates(self, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
        """The chain, narrowed to the request's own allowed models (ids or aliases)."""
        if allowed is None:
            return self._chain
        wanted = {info.id if (info := self._catalog.get(name)) else name for name in allowed}
        return tuple(model for model in self._chain if model in wanted)

    async def reserve(self, ctx: CallContext, request: CompletionRequest) -> tuple[Reservation, tuple[str, ...]]:
        """Hold the worst case of the longest chain prefix that fits; the models that may be tried."""
        models = self.candidates(request.allowed_models)
        if not models:
            raise CompletionFailed("No model may be used for this request, so nothing was called or charged.")
        now = self._clock()
        cheapest, cheapest_level = self.cheapest(request, models)
        reserve = ReserveRequest(
            reservation_id=str(uuid.uuid4()),
            request_key=ctx.request_key,
            team_id=ctx.team_id,
            channel_id=ctx.channel_id,
            user_id=ctx.user_id,
            levels=self.levels(request, models),
            starts=period_starts(now, self._tz),
            now=now,
            expires_at=now + self._hold_for,
            cheapest=cheapest_level,
        )
        try:
            reservation = await self._store.reserve(reserve)
        except DuplicateReservation:
            reservation = await self._take_over(reserve)
        if reservation.level is None:
            first = cheapest_level if reservation.downgraded else reserve.levels[0]
            await self._refused(ctx.team_id, reservation, first)
            raise QuotaExceeded(self._use(self._refusing(reservation, first)), self._tz)
        if reservation.downgraded:
            return reservation, (cheapest,)
        return reservation, models[: reservation.level + 1]

    def downgrade_note(self, reservation: Reservation, model: str) -> str:
        """The reply's line saying which limit moved the request to the cheapest model."""
        downgrading = [c for c in reservation.counters if c.downgrading]
        fullest = max(downgrading, key=lambda c: (c.used + c.reserved) / c.limit.amount)
        return downgrade_note(self._use(fullest), model)

    async def _take_over(self, reserve: ReserveRequest) -> Reservation:
        """Reserve again once the hold of an earlier process that lost this request's delivery is settled.

        Slack retries a delivery whose process died; the retry takes the delivery over once its lease
        has run out (bot.infra.db.deliveries), then finds that process's hold on the same request key.
        Only a hold whose delivery was taken over is settled (to what the ledger recorded of it): a
        hold of a request still being answered is left alone, and this one is refused.
        """
        if not await self._store.take_over(reserve.request_key):
            raise CompletionFailed("This request is already being answered; nothing more was charged.")
        try:
            return await self._store.reserve(reserve)
        except DuplicateReservation:
            raise CompletionFailed("This request is already being answered; nothing more was charged.") from None

    async def drain(self) -> None:
        """Write the settlements still pending (kept through a database outage) before the process ends."""
        await self._store.drain()

    async def settle(self, reservation: Reservation, completion: Completion) -> None:
        """Count what the call really used in place of the hold, and alert on each threshold it reached first."""
        if not reservation.held:
            return
        usage = Usage(requests=1, tokens=completion.usage.total_tokens, usd=completion.cost_usd or Decimal(0))
        settled = await self._store.settle(reservation.reservation_id, usage)
        if not settled:
            # Only when a hold outlived hold_for: expire() already counted the ledger's record of it.
            log.warning("quota reservation %s had expired before it was settled", reservation.reservation_id)
        await self._announce(settled.alerts)

    async def _refused(self, team_id: str, reservation: Reservation, first: Level) -> None:
        """A full hard limit refused: its 100 % alert, if it has one and nobody recorded it yet this period."""
        if self._alerts is None:
            return
        try:
            fired = []
            full = [c for c in reservation.counters if c.binds and not c.fits(first) and 100 in c.limit.alerts]
            for counter in full:
                if (alert := await self._store.record_refusal(team_id, counter, 100)) is not None:
                    fired.append(alert)
            await self._announce(tuple(fired))
        except Exception as err:  # noqa: BLE001 (an alert must never change how the request is answered)
            log.error("could not record a quota alert (%s)", type(err).__name__)

    async def _announce(self, fired: tuple[FiredAlert, ...]) -> None:
        """Hand each counter's highest new threshold to the alerts (one message, though several were reached)."""
        if self._alerts is None or not fired:
            return
        highest: dict[tuple[str, str, str, str, str], FiredAlert] = {}
        for alert in fired:
            key = (
                alert.limit.scope.value,
                alert.counted,
                alert.limit.metric.value,
                alert.limit.period.value,
                alert.period_start.isoformat(),
            )
            if key not in highest or alert.threshold > highest[key].threshold:
                highest[key] = alert
        for alert in highest.values():
            try:
                limit = alert.limit
                top = await self._store.top_user(
                    alert.team_id, limit.scope, alert.counted, limit.metric, alert.period_start
                )
                counter = CounterState(limit, alert.period_start, alert.used, Decimal(0), counted=alert.counted)
                await self._alerts.quota_alert(
                    QuotaAlert(
                        team_id=alert.team_id,
                        use=self._use(counter),
                        counted=alert.counted,
                        threshold=alert.threshold,
                        refused=alert.refused,
                        top=top,
                    )
                )
            except Exception as err:  # noqa: BLE001 (the request was answered; an alert failing must not change that)
                log.error("could not send a quota alert (%s)", type(err).__name__)

    async def release(self, reservation: Reservation) -> None:
        """Drop the hold: nothing is charged."""
        if reservation.held:
            await self._store.release(reservation.reservation_id)

    def _refusing(self, reservation: Reservation, cheapest: Level) -> CounterState:
        """The limit that refused: one where even the cheapest level does not fit, the fullest first."""
        misfits = [c for c in reservation.counters if c.binds and not c.fits(cheapest)]
        return max(misfits or reservation.counters, key=lambda c: (c.used + c.reserved) / c.limit.amount)

    def _use(self, counter: CounterState) -> QuotaUse:
        limit = counter.limit
        return QuotaUse(
            # A person reads the per-person default as their own limit (its target "" tells it apart).
            scope=Scope.USER.value if limit.scope is Scope.DEFAULT_USER else limit.scope.value,
            target=limit.target,
            metric=limit.metric,
            period=limit.period,
            limit=limit.amount,
            used=counter.used,
            reserved=counter.reserved,
            period_start=counter.period_start,
            resets_at=next_period_start(limit.period, counter.period_start, self._tz),
            mode=limit.mode,
            alerts=limit.alerts,
            downgrade=limit.downgrade,
        )


def _target(scope: Scope, target: str) -> str:
    return "" if scope.is_default else target


class _GatedCompleter:
    """A Completer that asks the quotas first and only lets the router try models that fit."""

    def __init__(self, quotas: QuotaService, inner: Completer) -> None:
        self._quotas = quotas
        self._inner = inner

    async def complete(self, ctx: CallContext, request: CompletionRequest) -> Completion:
        """Reserve, complete on the models that fit, then settle; release on failure."""
        reservation, models = await self._quotas.reserve(ctx, request)
        try:
            completion = await self._inner.complete(ctx, replace(request, allowed_models=models))
        except CompletionFailed as err:
            await _to_the_end(self._quotas.release(reservation))
            skipped = [m for m in self._quotas.candidates(request.allowed_models) if m not in models]
            if not skipped:
                raise
            why = (
                "a limit is past its downgrade share, so only the cheapest model may be used."
                if reservation.downgraded
                else "the worst case of a request there does not fit what is left of the quota."
            )
            raise CompletionFailed(
                f"{err} {' and '.join(skipped)} {'was' if len(skipped) == 1 else 'were'} not tried: {why}"
            ) from err
        except BaseException:
            # Cancelled: nothing is charged. Shielded so the cancellation cannot leave the hold behind.
            await _to_the_end(self._quotas.release(reservation))
            raise
        try:
            await _to_the_end(self._quotas.settle(reservation, completion))
        except Exception as err:  # noqa: BLE001 (whatever it was, the answer was paid for and is delivered)
            # The hold expires and is then settled to the ledger's record of this call (QuotaService.expire).
            log.error(
                "could not settle a quota reservation (%s); it is settled from the ledger when it expires",
                type(err).__name__,
            )
        if reservation.downgraded:
            note = self._quotas.downgrade_note(reservation, models[0])
            # The router's note would only say the dearer models were not allowed: this line says why, instead.
            completion = replace(completion, fallback_note=None, extra_notes=(*completion.extra_notes, note))
        return completion


async def _to_the_end(step: Awaitable[None]) -> None:
    """Run a settle or release to its end even if the caller is cancelled meanwhile."""
    task = asyncio.ensure_future(step)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # A bare shield would leave the step running unwatched: its failure would surface only as
        # "Task exception was never retrieved". Wait for it (asyncio.wait does not cancel it), so a
        # failure is raised here, with the cancellation as its context.
        await asyncio.wait([task])
        task.result()
        raise
