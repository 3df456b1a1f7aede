"""Running the bot: migrate, build, serve until told to stop, then stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import TYPE_CHECKING

from aiohttp import web

from bot.composition import Container, build_container
from bot.config import Settings
from bot.infra.db.migrate import upgrade
from bot.scheduler import build_scheduler
from bot.slack.in_flight import InFlight
from bot.web.server import build_web_app

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

log = logging.getLogger(__name__)

GC_THRESHOLDS = (10_000, 20, 20)
# Slack gives up on an acknowledgement after 3 s: a request still being acknowledged at the stop has no longer.
ACK_WINDOW_S = 3.0


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
    in_flight = container.bolt.in_flight
    stopping = asyncio.Event()
    grace = settings.shutdown_grace
    socket_handler = _socket_handler(container) if socket_mode else None
    runner = web.AppRunner(
        build_web_app(
            container.bolt,
            container.ping,
            container.metrics,
            stopping=stopping,
            socket_connected=socket_handler.client.is_connected if socket_handler is not None else None,
        ),
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
        if socket_handler is not None:
            await _serve_socket_mode(socket_handler, signals.stop)
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


def _socket_handler(container: Container) -> AsyncSocketModeHandler:
    """Bolt's Socket Mode handler for the app; /healthz reports its connection."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    return AsyncSocketModeHandler(container.bolt, container.settings.slack_app_token)


async def _serve_socket_mode(handler: AsyncSocketModeHandler, stop: asyncio.Event) -> None:
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
