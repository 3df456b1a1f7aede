"""Each model's health in memory: consecutive failures, cool-downs, probes, and the shared marks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.ports.chat import ErrorKind
from bot.ports.model_status import ModelHealth, ModelStatusStore, UnavailableModel
from bot.router.policy import POLICY, Effect, RouterTuning


@dataclass
class _State:
    failures: int = 0  # consecutive failed attempts
    trips: int = 0  # consecutive cool-downs, so each failed probe waits longer
    cooled_until: datetime | None = None
    reason: ErrorKind | None = None
    marked: bool = False  # unavailable in the database, not just here
    probing: bool = False  # one request is trying the model after its cool-down


class HealthBoard:
    """Decides which models may be tried now; a cooled-down model is probed by one request at a time."""

    def __init__(self, chain: tuple[str, ...], tuning: RouterTuning, store: ModelStatusStore | None) -> None:
        self._chain = chain
        self._tuning = tuning
        self._store = store
        self._states: dict[str, _State] = {model: _State() for model in chain}
        self._marks_due: datetime | None = None

    async def sync(self, now: datetime) -> None:
        """Load the database's unavailability marks when the last load is older than marks_ttl."""
        if self._store is None or (self._marks_due is not None and now < self._marks_due):
            return
        marks = {mark.model: mark for mark in await self._store.unavailable()}
        self._marks_due = now + self._tuning.marks_ttl
        for model, state in self._states.items():
            mark = marks.get(model)
            if mark is not None:
                state.marked, state.reason = True, ErrorKind.MODEL_NOT_FOUND
                state.cooled_until = mark.retry_at
            elif state.marked:
                # Another replica's probe found the model again.
                self._states[model] = _State()

    def admit(self, model: str, now: datetime) -> bool:
        """May the model be tried now? After a cool-down, only one request probes it."""
        state = self._state(model)
        if state.cooled_until is None:
            return True
        if now < state.cooled_until or state.probing:
            return False
        state.probing = True
        return True

    def release(self, model: str) -> None:
        """The request that was probing the model is done with it."""
        self._state(model).probing = False

    def succeeded(self, model: str) -> bool:
        """Forget the model's failures; True when it was marked unavailable in the database."""
        state = self._state(model)
        marked = state.marked
        if state.failures or state.cooled_until is not None:
            self._states[model] = _State()
        return marked

    def failed(
        self, model: str, kind: ErrorKind, now: datetime, hold: timedelta | None = None
    ) -> UnavailableModel | None:
        """Record a failure; returns the mark to store when the model must be marked unavailable."""
        state = self._state(model)
        effect = POLICY[kind].effect
        if hold is not None:
            # Throttled for longer than is worth waiting: rest until the server says.
            self._cool(state, kind, now + hold)
        elif effect is Effect.COUNT:
            state.failures += 1
            probe_failed = state.cooled_until is not None and now >= state.cooled_until
            if probe_failed or state.failures >= self._tuning.failures_to_cool:
                length = min(self._tuning.cool_down * 2**state.trips, self._tuning.max_cool_down)
                self._cool(state, kind, now + length)
        elif effect is Effect.COOL_NOW:
            self._cool(state, kind, now + self._tuning.no_credit_cool_down)
        elif effect is Effect.MARK_UNAVAILABLE:
            retry_at = now + self._tuning.unavailable_for
            self._cool(state, kind, retry_at)
            state.marked = True
            return UnavailableModel(model=model, reason=kind.value, marked_at=now, retry_at=retry_at)
        return None

    def forget(self, model: str) -> None:
        """Clear the model's failures, cool-down and mark, as if it had just answered."""
        self._states[model] = _State()

    def reason(self, model: str) -> ErrorKind | None:
        """Why the model is resting, if it is."""
        return self._state(model).reason

    def until(self, model: str) -> datetime | None:
        """When a resting model will be tried again."""
        return self._state(model).cooled_until

    def snapshot(self, now: datetime) -> list[ModelHealth]:
        """Every model of the chain, in order, as people should see it."""
        views = []
        for model in self._chain:
            state = self._states[model]
            why = POLICY[state.reason].why if state.reason else None
            if state.cooled_until is None:
                views.append(ModelHealth(model, "healthy"))
            elif now >= state.cooled_until:
                views.append(ModelHealth(model, "to be probed", why, state.cooled_until))
            else:
                views.append(
                    ModelHealth(model, "unavailable" if state.marked else "cooling down", why, state.cooled_until)
                )
        return views

    def _state(self, model: str) -> _State:
        return self._states.setdefault(model, _State())

    def _cool(self, state: _State, kind: ErrorKind, until: datetime) -> None:
        state.cooled_until = until
        state.reason = kind
        state.trips += 1
        state.failures = 0
