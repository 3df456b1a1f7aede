"""Running the bot: migrate, build, serve until told to stop, then stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.listener.async_listener_completion_handler import AsyncListenerCompletionHandler
from slack_bolt.listener.async_listener_start_handler import AsyncListenerStartHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.composition import Container, build_container
from bot.config import Settings
from bot.infra.db.migrate import upgrade
from bot.scheduler import build_scheduler
from bot.web.server import build_web_app

log = logging.getLogger(__name__)

GC_THRESHOLDS = (10_000, 20, 20)
RESTARTING = (
    "Frugal was restarting and could not finish this request; nothing was charged. Please send it again in a moment."
)
# Slack gives up on an acknowledgement after 3 s: a request still being acknowledged at the stop has no longer.
ACK_WINDOW_S = 3.0
# After the grace period: how long the cancelled requests get to release their holds, and their users to be told.
WIND_DOWN_S = 5.0


async def serve(settings: Settings, *, port: int, socket_mode: bool) -> None:
    """Apply migrations, then serve Slack until SIGINT or SIGTERM; then stop gracefully (`stop_gracefully`)."""
    await upgrade(settings.database_url)
    container = build_container(settings)
    try:
        # GET /v1/models: an unknown model ID stops the start here, with a did-you-mean (ConfigError).
        await container.lifecycle.startup()
    except BaseException:
        await container.aclose()
        raise
    signals = StopSignals()
    signals.install(asyncio.get_running_loop())
    in_flight = InFlight(container.bolt)
    stopping = asyncio.Event()
    grace = settings.shutdown_grace
    runner = web.AppRunner(
        build_web_app(container.bolt, container.engine, container.metrics, stopping=stopping),
        shutdown_timeout=min(grace, ACK_WINDOW_S),
    )
    await runner.setup()
    lifecycle_checks = asyncio.create_task(container.lifecycle.run_daily(), name="model-lifecycle-daily")
    scheduler = build_scheduler(settings, container.digests, container.daily_jobs, minute_jobs=container.minute_jobs)
    try:
        scheduler.start()
        # Everything built so far lives as long as the process: frozen, the collector stops re-scanning
        # it on every full collection, whose pauses showed in the ack latency under load (bench/load.py).
        gc.collect()
        gc.freeze()
        # Each request allocates thousands of short-lived objects; at the default thresholds (700, 10, 10)
        # the collector ran so often that its pauses doubled the ack p99 at 200 requests/s (bench/load.py).
        gc.set_threshold(*GC_THRESHOLDS)
        await web.TCPSite(runner, "0.0.0.0", port).start()
        log.info("Frugal listening on port %d (%s)", port, "Socket Mode" if socket_mode else "HTTP")
        if socket_mode:
            await _serve_socket_mode(container, signals.stop)
        else:
            await signals.stop.wait()
    finally:
        # From here on /healthz and new deliveries answer 503: a load balancer, and Slack's retries, go elsewhere.
        stopping.set()
        # A digest being posted is finished meanwhile, and no new one starts.
        await asyncio.gather(stop_gracefully(container, runner, in_flight, signals, grace), scheduler.stop())
        lifecycle_checks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lifecycle_checks
        await container.quota.drain()
        await container.aclose()


async def stop_gracefully(
    container: Container, runner: web.AppRunner, in_flight: InFlight, signals: StopSignals, grace: float
) -> None:
    """Finish the requests in flight within ``grace`` seconds; then interrupt the rest, settle them, tell their users.

    A second SIGINT or SIGTERM ends the wait at once. The requests cut off have their quota holds
    released (the quota gate does so when cancelled) and their users are told nothing was charged.
    """
    deadline = asyncio.get_running_loop().time() + grace
    log.info("Frugal stopping: %d requests in flight, up to %g s to finish them", in_flight.count, grace)
    await in_flight.finish(deadline, signals.hurry)
    # Closes the port, after the requests still being acknowledged (they may start more work).
    await runner.cleanup()
    await in_flight.finish(deadline, signals.hurry)
    interrupted = await in_flight.interrupt()
    if interrupted:
        log.warning("Frugal stopped %d requests at the end of the grace period; their users were told", interrupted)
    else:
        log.info("Frugal stopped with every request answered")


class StopSignals:
    """SIGINT/SIGTERM: the first asks for a graceful stop, a second one to hurry it."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle both signals on ``loop``."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._received)

    def _received(self) -> None:
        if self.stop.is_set():
            self.hurry.set()
        self.stop.set()


class InFlight(AsyncListenerStartHandler):
    """The Bolt listeners still running after their ack, so that a stop can wait for them, or interrupt them.

    Bolt runs each listener in a task of its own after the ack; its listener start handler runs first
    in that task, and its completion handler last (both public hooks of its listener runner).
    """

    def __init__(self, app: AsyncApp) -> None:
        runner = app.listener_runner
        self._started = runner.listener_start_handler
        self._tasks: dict[asyncio.Task[Any], AsyncBoltRequest] = {}
        self._returned: set[asyncio.Task[Any]] = set()
        runner.listener_start_handler = self
        runner.listener_completion_handler = _Returned(runner.listener_completion_handler, self._returned)

    @property
    def count(self) -> int:
        """How many listeners are running now."""
        return len(self._tasks)

    async def handle(self, request: AsyncBoltRequest, response: BoltResponse | None) -> None:
        """Bolt's start hook: remember the listener's task until it ends."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks[task] = request
            task.add_done_callback(self._ended)
        await self._started.handle(request=request, response=response)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)
        self._returned.discard(task)

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
        cut_off = [request for task, request in self._tasks.items() if task not in self._returned]
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # The quota gate releases a cancelled request's hold (shielded); the completion hook marks it done.
            await asyncio.wait(tasks, timeout=WIND_DOWN_S)
        if cut_off:
            await asyncio.wait([asyncio.ensure_future(_tell(request)) for request in cut_off], timeout=WIND_DOWN_S)
        return len(cut_off)


class _Returned(AsyncListenerCompletionHandler):
    """Bolt's completion hook: notes that the listener itself has returned, then runs the hook it wraps."""

    def __init__(self, inner: AsyncListenerCompletionHandler, returned: set[asyncio.Task[Any]]) -> None:
        self._inner = inner
        self._returned = returned

    async def handle(self, request: AsyncBoltRequest, response: BoltResponse | None) -> None:
        """Mark this listener's task as past its listener, then hand over."""
        if (task := asyncio.current_task()) is not None:
            self._returned.add(task)
        await self._inner.handle(request=request, response=response)


async def _tell(request: AsyncBoltRequest) -> None:
    """Tell the person whose request was cut off, where the answer would have gone; a failure is only logged."""
    context = request.context
    body = request.body if isinstance(request.body, dict) else {}
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


async def _serve_socket_mode(container: Container, stop: asyncio.Event) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(container.bolt, container.settings.slack_app_token)
    # The SDK retries connecting forever (bad token, Slack unreachable), so a stop must not wait for it.
    connecting = asyncio.create_task(handler.connect_async(), name="socket-mode-connect")
    try:
        await stop.wait()
    finally:
        # Closed first: no new delivery comes in while the ones in flight finish.
        await handler.close_async()
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
