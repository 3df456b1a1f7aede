"""The admin-alerts port: telling Frugal's admins that something needs them."""

from __future__ import annotations

from typing import Protocol


class AdminAlerts(Protocol):
    """Where operational problems are reported; never given message text."""

    async def alert(self, team_id: str | None, text: str, *, dedupe_key: str | None = None) -> None:
        """Tell the admins `text`; alerts with the same dedupe_key are sent once an hour at most."""
        ...
