"""Waiting for the work Bolt runs after a listener's ack, so no test closes a database under it."""

from __future__ import annotations

import asyncio
from typing import Any


async def settle_listeners(timeout: float = 10.0) -> None:
    """Wait for Bolt's listeners still running after their ack (and their once-only bookkeeping)."""
    running = [task for task in asyncio.all_tasks() if _runs_in_bolt(task)]
    if running:
        await asyncio.wait(running, timeout=timeout)


def _runs_in_bolt(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "slack_bolt" in code.co_filename
