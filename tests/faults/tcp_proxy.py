"""A TCP proxy on 127.0.0.1 that can play a database restart: every connection cut, new ones refused, then back."""

from __future__ import annotations

import asyncio
import contextlib


class RestartableProxy:
    """Forwards 127.0.0.1:<port> to an upstream host:port; `go_down()` and `come_back()` simulate a restart."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.accepted = 0

    async def start(self) -> int:
        """Listen on a free port (kept across restarts) and return it."""
        await self._listen()
        return self.port

    async def go_down(self) -> None:
        """Stop listening (connects are refused) and reset every open connection, as a server shutting down does."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            _reset(writer)
        # With both ends reset, every link's pipes end on their own.
        await asyncio.wait_for(asyncio.gather(*self._links, return_exceptions=True), timeout=5)
        await self._server.wait_closed()
        self._server = None

    async def come_back(self) -> None:
        """Accept connections again on the same port."""
        await self._listen()

    async def close(self) -> None:
        """Stop for good."""
        if self._server is not None:
            await self.go_down()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        self._writers.add(client_writer)
        upstream_writer = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
            self._writers.add(upstream_writer)
            await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(task)
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    self._writers.discard(writer)
                    _reset(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    # abort(), not close(): the peer sees the connection drop at once, as when a server process dies.
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
