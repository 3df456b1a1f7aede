"""The listeners still running after their ack, so that a stop can wait for them, or interrupt them and tell their users."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

log = logging.getLogger(__name__)

RESTARTING = (
    "Frugal was restarting and could not finish this request; nothing was charged. Please send it again in a moment."
)
# After the grace period: how long the cancelled requests get to release their holds, and their users to be told.
WIND_DOWN_S = 5.0


@dataclass
class _Running:
    context: AsyncBoltContext
    body: dict[str, Any]
    returned: bool = False  # the listener itself is done; only its bookkeeping (the claim's done mark) is left


@dataclass
class InFlight:
    """Listener tasks, registered by the wrapper every listener is registered with (bot.slack.once.once_only)."""

    _tasks: dict[asyncio.Task[Any], _Running] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many listeners are running now."""
        return len(self._tasks)

    def started(self, context: AsyncBoltContext, body: Any) -> None:
        """The listener of ``context`` runs in the current task, until that task ends."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks[task] = _Running(context, body if isinstance(body, dict) else {})
            task.add_done_callback(self._ended)

    def returned(self) -> None:
        """The current task's listener has returned (or raised): nobody is waiting on it any more."""
        task = asyncio.current_task()
        if task is not None and (running := self._tasks.get(task)) is not None:
            running.returned = True

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)

    async def finish(self, deadline: float, hurry: asyncio.Event) -> None:
        """Wait until no listener runs, the loop's clock reaches ``deadline``, or ``hurry`` is set."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # a listener whose task was just created registers on its first step
        hurrying = asyncio.ensure_future(hurry.wait())
        try:
            while self._tasks and not hurry.is_set() and (left := deadline - loop.time()) > 0:
                await asyncio.wait([*self._tasks, hurrying], timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurrying.cancel()

    async def interrupt(self) -> int:
        """Cancel every listener still running, let them release what they hold, tell their users; how many."""
        cut_off = [running for running in self._tasks.values() if not running.returned]
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # The quota gate releases a cancelled request's hold (shielded); the wrapper marks the delivery done.
            await asyncio.wait(tasks, timeout=WIND_DOWN_S)
        if cut_off:
            await asyncio.wait([asyncio.ensure_future(_tell(running)) for running in cut_off], timeout=WIND_DOWN_S)
        return len(cut_off)


async def _tell(running: _Running) -> None:
    """Tell the person whose request was cut off, where the answer would have gone; a failure is only logged."""
    context, body = running.context, running.body
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    try:
        # Bolt's context.respond is never None: without a response_url (events) calling it raises ValueError.
        if context.response_url:
            await context.respond(text=RESTARTING, response_type="ephemeral", replace_original=False)
        elif event.get("channel") and event.get("ts") and event.get("user"):
            await context.client.chat_postMessage(
                channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"], text=RESTARTING
            )
    except Exception as err:  # noqa: BLE001 (the process is stopping: nothing more can be done about it)
        log.warning("could not tell a user their request was cut off by the stop (%s)", type(err).__name__)
