"""Base class serving an aiohttp app on 127.0.0.1 from a daemon thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Self

from aiohttp import web


class ThreadedAiohttpServer:
    """Run ``build_app()`` over real TCP in a background thread; subclasses define the routes."""

    def __init__(self) -> None:
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        """Return the aiohttp application to serve."""
        raise NotImplementedError

    def start(self) -> str:
        """Start listening on a free port and return the base URL once the socket is bound."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        port = self._submit(self._open()).result(timeout=10)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self) -> None:
        """Close the listener, cancel in-flight handlers, then stop and close the loop and thread."""
        if self._thread is None or self._loop is None:
            return
        try:
            self._submit(self._close()).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            self._loop = self._thread = self._runner = None

    def _submit(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _open(self) -> int:
        # handler_cancellation lets a client-side timeout or disconnect cancel a hanging handler,
        # and the short shutdown_timeout keeps stop() fast even while requests are still sleeping.
        self._runner = web.AppRunner(self.build_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return self._runner.addresses[0][1]

    async def _close(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        current = asyncio.current_task()
        leftovers = [t for t in asyncio.all_tasks() if t is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
