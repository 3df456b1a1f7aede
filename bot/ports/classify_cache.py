"""The classify-cache port: labels given to the same text and label set lately, keyed by a hash (never the text)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class CachedLabel:
    """A label a model chose for a text and label set, and when."""

    label: str
    confidence: float | None
    served_model: str
    created_at: datetime


class ClassifyCache(Protocol):
    """Where recent classifications are kept, by the hash of workspace, labels and text."""

    async def get(self, key: str, since: datetime) -> CachedLabel | None:
        """The label stored under `key` at or after `since`, or None."""
        ...

    async def put(self, key: str, team_id: str, entry: CachedLabel) -> None:
        """Store (or refresh) the label under `key`."""
        ...

    async def purge(self, before: datetime) -> int:
        """Forget entries older than `before`; how many."""
        ...
