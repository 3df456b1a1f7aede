"""Fake Slack Web API (plus file upload, response_url and Socket Mode endpoints) for the real slack_sdk clients."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict

from ._server import ThreadedAiohttpServer

DEFAULT_AUTH = {
    "ok": True,
    "url": "https://frugal-test.slack.com/",
    "team": "Frugal Test",
    "team_id": "T0001",
    "user": "frugal",
    "user_id": "UBOT",
    "bot_id": "BBOT",
    "is_enterprise_install": False,
}
# Methods Slack answers without a bearer token, so strict_tokens must not reject them.
TOKENLESS_METHODS = {"oauth.v2.access"}
SOCKET_ENVELOPE_TYPES = {"slash_commands", "events_api", "interactive"}


@dataclass(frozen=True)
class Call:
    """One request received by the fake: an API method, ``response_url:<name>`` or ``socket_*`` (Socket Mode)."""

    method: str
    params: dict[str, Any]
    headers: Mapping[str, str]
    at: float
    token: str | None = None


@dataclass
class _Fault:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int


class FakeSlack(ThreadedAiohttpServer):
    """Fake Slack: point ``AsyncWebClient(base_url=fake.api_url)`` at it and inspect ``fake.calls``."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        # Live Socket Mode connections, oldest first; only touched on the server's event loop.
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ids = itertools.count(1)
        self.reset()

    @property
    def api_url(self) -> str:
        """Web API base URL for slack_sdk (trailing slash included)."""
        return f"{self.base_url}/api/"

    @property
    def calls(self) -> list[Call]:
        """Snapshot of every call received so far."""
        with self._cond:
            return list(self._calls)

    def reset(self) -> None:
        """Forget recorded calls and restore the default configuration."""
        with self._cond:
            self._calls: list[Call] = []
            self._faults: dict[str, list[_Fault]] = {}
        self._ids = itertools.count(1)
        self.tokens: dict[str, dict[str, Any]] = {}
        self.strict_tokens = False
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.responses: dict[str, dict[str, Any]] = {}
        self.method_latency: dict[str, float] = {}
        self.uploads: dict[str, bytes] = {}
        self.oauth_response: dict[str, Any] = {
            "ok": True,
            "access_token": "xoxb-fake-installed",
            "token_type": "bot",
            "scope": "commands,chat:write,app_mentions:read",
            "bot_user_id": "UBOT",
            "app_id": "A0001",
            "team": {"id": "T0001", "name": "Frugal Test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": "U0001"},
        }

    def response_url(self, name: str = "r1") -> str:
        """URL whose JSON POSTs are recorded as calls named ``response_url:<name>``."""
        return f"{self.base_url}/response/{name}"

    def wait_socket_connected(self, timeout: float = 10.0) -> None:
        """Block until a Socket Mode client has connected since the last reset; AssertionError on timeout."""
        self.wait_for("socket_connect", timeout=timeout)

    def socket_send(self, envelope_type: str, payload: dict[str, Any], *, accepts_response_payload: bool = True) -> str:
        """Send an envelope to the newest Socket Mode client and return its envelope_id (thread-safe)."""
        if envelope_type not in SOCKET_ENVELOPE_TYPES:
            raise ValueError(f"envelope_type must be one of {sorted(SOCKET_ENVELOPE_TYPES)}, got {envelope_type!r}")
        envelope_id = f"env-{next(self._ids):04d}"
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        self._submit(self._send_envelope(envelope)).result(timeout=10)
        return envelope_id

    def fail(
        self,
        method: str,
        status: int = 429,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` answer ``status`` with ``headers`` and ``body``."""
        headers = {"Retry-After": "1"} if headers is None else headers
        body = {"ok": False, "error": "ratelimited"} if body is None else body
        with self._cond:
            self._faults.setdefault(method, []).append(_Fault(status, headers, body, times))

    def calls_to(self, method: str, predicate: Callable[[Call], bool] | None = None) -> list[Call]:
        """Recorded calls to ``method`` (optionally filtered by ``predicate``)."""
        return [c for c in self.calls if c.method == method and (predicate is None or predicate(c))]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        predicate: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until ``count`` matching calls arrived and return them all; AssertionError on timeout."""
        with self._cond:
            if self._cond.wait_for(lambda: len(self.calls_to(method, predicate)) >= count, timeout):
                return self.calls_to(method, predicate)
        raise self._timeout_error(method, count, timeout)

    async def await_calls(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        predicate: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Async ``wait_for`` that polls without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while len(matching := self.calls_to(method, predicate)) < count:
            if time.monotonic() >= deadline:
                raise self._timeout_error(method, count, timeout)
            await asyncio.sleep(0.01)
        return matching

    def _timeout_error(self, method: str, count: int, timeout: float) -> AssertionError:
        seen = "\n".join(f"  {c.method} {c.params}" for c in self.calls) or "  (none)"
        return AssertionError(f"expected {count} matching {method} call(s) in {timeout}s; seen:\n{seen}")

    def build_app(self) -> web.Application:
        """Routes: Web API methods, file upload URLs, response URLs and Socket Mode websockets."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/socket-mode/{n}", self._socket_mode)
        app.on_shutdown.append(self._close_sockets)
        return app

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._cond:
            faults = self._faults.get(method)
            if not faults:
                return None
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.pop(0)
            return fault

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.method == "POST":
            params.update(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        self._record(Call(method, params, CIMultiDict(request.headers), time.time(), token))
        await asyncio.sleep(self.method_latency.get(method, 0.0))
        if fault := self._take_fault(method):
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        if self.strict_tokens and method not in TOKENLESS_METHODS and token not in self.tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method in self.responses:
            return web.json_response(self.responses[method])
        return web.json_response(self._answer(method, params, token))

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = params.get("channel", "C0001")
        if method == "auth.test":
            return DEFAULT_AUTH | self.tokens.get(token or "", {})
        if method == "chat.postMessage":
            if channel.startswith(("U", "W")):
                # Posted to a user ID, the message goes to the app's DM with them; Slack answers with the DM's ID.
                channel = dm_channel(channel)
            ts = self._next_ts()
            echoed = {k: params[k] for k in ("text", "blocks", "thread_ts") if k in params}
            message = {"type": "message", "user": "UBOT", "bot_id": "BBOT", "ts": ts} | echoed
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method in ("chat.update", "chat.delete"):
            return {"ok": True, "channel": channel, "ts": params.get("ts")}
        if method == "users.info":
            user_id = params.get("user", "U0001")
            user = {
                "id": user_id,
                "team_id": "T0001",
                "name": user_id.lower(),
                "is_admin": False,
                "is_owner": False,
                "is_bot": False,
                "tz": "Europe/Paris",
                "tz_offset": 3600,
            }
            return {"ok": True, "user": user | self.users.get(user_id, {})}
        if method == "conversations.replies":
            messages = self.threads.get((channel, params.get("ts", "")), [])
            return {"ok": True, "messages": messages, "has_more": False}
        if method == "conversations.info":
            info = {"id": channel, "name": "general", "is_channel": True, "is_im": channel.startswith("D")}
            return {"ok": True, "channel": info | self.channels.get(channel, {})}
        if method in ("views.publish", "views.open", "views.update"):
            view = _json_param(params.get("view")) or {}
            return {"ok": True, "view": view | {"id": params.get("view_id") or f"V{next(self._ids):04d}"}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ids):04d}"
            return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = _json_param(params.get("files")) or []
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "oauth.v2.access":
            return self.oauth_response
        if method == "apps.connections.open":
            ws_base = self.base_url.replace("http://", "ws://", 1)
            return {"ok": True, "url": f"{ws_base}/socket-mode/{next(self._socket_ids)}"}
        return {"ok": True}

    def _next_ts(self) -> str:
        micros = 1_700_000_000_000_000 + 100 * next(self._ids)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    async def _upload(self, request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next(v for v in form.values() if isinstance(v, web.FileField))
            data = part.file.read()
        else:
            data = await request.read()
        self.uploads[request.match_info["file_id"]] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        method = f"response_url:{request.match_info['name']}"
        self._record(Call(method, await request.json(), CIMultiDict(request.headers), time.time()))
        if fault := self._take_fault(method):  # fail("response_url:<name>", ...) throttles a response URL
            return web.Response(text=fault.body.get("error", "error"), status=fault.status, headers=fault.headers)
        return web.Response(text="ok")

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        headers = CIMultiDict(request.headers)
        connection = {"connection": int(request.match_info["n"])}
        self._sockets.append(ws)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {"host": "fake-applink", "build_number": 1, "approximate_connection_time": 18060},
                    "connection_info": {"app_id": "A0001"},
                }
            )
            self._record(Call("socket_connect", connection, headers, time.time()))
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._record(Call("socket_ack", json.loads(message.data), headers, time.time()))
        finally:
            self._sockets.remove(ws)
            self._record(Call("socket_disconnect", connection, headers, time.time()))
        return ws

    async def _send_envelope(self, envelope: dict[str, Any]) -> None:
        if not self._sockets:
            raise AssertionError("no Socket Mode client is connected")
        await self._sockets[-1].send_json(envelope)

    async def _close_sockets(self, app: web.Application) -> None:
        # Without this, shutdown would wait for the open websocket handlers and then cancel them.
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def dm_channel(user_id: str) -> str:
    """The ID of Frugal's DM with `user_id`, as the fake hands it out."""
    return f"D{user_id[1:]}"


def _json_param(value: Any) -> Any:
    # Form-encoded calls carry structured arguments as JSON strings; JSON calls carry them as-is.
    return json.loads(value) if isinstance(value, str) else value
