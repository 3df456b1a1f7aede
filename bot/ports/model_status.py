"""Model health: models known to be unavailable (shared by replicas) and the live health view."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol


@dataclass(frozen=True)
class UnavailableModel:
    """A model the endpoint said does not exist; skipped until retry_at, then probed once."""

    model: str
    reason: str
    marked_at: datetime
    retry_at: datetime


class ModelStatusStore(Protocol):
    """Persistent model unavailability, so every replica and a restart know it."""

    async def mark_unavailable(self, mark: UnavailableModel) -> None:
        """Record (or renew) that a model is unavailable."""
        ...

    async def clear(self, model: str) -> None:
        """Forget that a model was unavailable."""
        ...

    async def unavailable(self) -> list[UnavailableModel]:
        """Every model currently marked unavailable."""
        ...


@dataclass(frozen=True)
class ModelHealth:
    """How one model of the chain is doing right now."""

    model: str
    state: str  # "healthy", "cooling down" or "unavailable"
    reason: str | None = None  # why it is not healthy, in plain words
    until: datetime | None = None  # when it will be tried again


class ModelHealthReader(Protocol):
    """Reads the router's view of each model's health."""

    async def model_health(self) -> list[ModelHealth]:
        """The health of every model in the chain, in chain order."""
        ...

    async def clear_mark(self, model: str) -> bool:
        """Forget that a model of the chain was unavailable or resting; False when it was healthy."""
        ...


@dataclass(frozen=True)
class Retirement:
    """A model of the chain that no longer answers: skipped without a call."""

    model: str
    shutdown_date: date | None  # when it shut down, where known
    replacement: str | None  # what OpenAI recommends instead, where known
    why: str  # in plain words: "was shut down on 2026-10-23", "is not offered by the endpoint"


class RetiredModels:
    """The retired models of the chain, as the last lifecycle check found them; the router skips them."""

    def __init__(self, retired: Iterable[Retirement] = ()) -> None:
        self._retired = {r.model: r for r in retired}

    def replace(self, retired: Iterable[Retirement]) -> None:
        """Take a new check's findings."""
        self._retired = {r.model: r for r in retired}

    def get(self, model: str) -> Retirement | None:
        """The model's retirement, or None when it is served."""
        return self._retired.get(model)

    def all(self) -> tuple[Retirement, ...]:
        """Every retired model, in the order found."""
        return tuple(self._retired.values())
