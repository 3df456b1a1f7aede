"""Running the bot: migrate, build, serve until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from aiohttp import web

from bot.composition import Container, build_container
from bot.config import Settings
from bot.infra.db.migrate import upgrade
from bot.scheduler import build_scheduler
from bot.web.server import build_web_app

log = logging.getLogger(__name__)

GC_THRESHOLDS = (10_000, 20, 20)


async def serve(settings: Settings, *, port: int, socket_mode: bool) -> None:
    """Apply migrations, then serve Slack until SIGINT or SIGTERM."""
    await upgrade(settings.database_url)
    container = build_container(settings)
    try:
        # GET /v1/models: an unknown model ID stops the start here, with a did-you-mean (ConfigError).
        await container.lifecycle.startup()
    except BaseException:
        await container.aclose()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(build_web_app(container.bolt, container.engine, container.metrics))
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
            await _serve_socket_mode(container, stop)
        else:
            await stop.wait()
    finally:
        log.info("Frugal stopping")
        await scheduler.stop()
        lifecycle_checks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lifecycle_checks
        await runner.cleanup()
        await container.aclose()


async def _serve_socket_mode(container: Container, stop: asyncio.Event) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(container.bolt, container.settings.slack_app_token)
    # The SDK retries connecting forever (bad token, Slack unreachable), so a stop must not wait for it.
    connecting = asyncio.create_task(handler.connect_async(), name="socket-mode-connect")
    try:
        await stop.wait()
    finally:
        await handler.close_async()
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
