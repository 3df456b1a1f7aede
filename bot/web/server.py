"""The aiohttp application: POST /slack/events, GET /healthz, and the OAuth install routes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.infra.metrics import Metrics
from bot.ports.store import StoreUnavailable
from bot.slack.app import FrugalApp

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 2.0
# Slack's own tolerance: a request signed more than five minutes ago may be a replay.
MAX_REQUEST_AGE_S = 300
# Ten digits hold every Unix time until 2286; a longer "timestamp" is not one.
_MAX_TIMESTAMP_DIGITS = 12


def build_web_app(
    bolt: FrugalApp,
    ping: Callable[[], Awaitable[None]],
    metrics: Metrics | None = None,
    *,
    stopping: asyncio.Event | None = None,
    socket_connected: Callable[[], Awaitable[bool]] | None = None,
) -> web.Application:
    """Serve Bolt on /slack/events, the database health on /healthz and, given metrics, /metrics.

    ``ping`` asks the database for a trivial answer, raising StoreUnavailable when it cannot be had
    (bot.infra.db.health.database_ping, built by the composition root).

    Once ``stopping`` is set (a graceful stop), /healthz and every new delivery answer 503, so a load
    balancer takes this process out and Slack delivers its retries to another. In Socket Mode,
    ``socket_connected`` (the Socket Mode client's ``is_connected``) makes /healthz report the socket
    too: a process whose socket is down receives nothing from Slack, however healthy its database.
    """

    async def slack_events(request: web.Request) -> web.Response:
        if stopping is not None and stopping.is_set():
            return web.json_response({"status": "stopping"}, status=503)
        raw = await request.read()
        if problem := signature_problem(bolt.signing_secret, raw, request.headers):
            # Nothing of an unverified body is read, answered or logged: its response_url could point anywhere.
            log.info("refused a Slack request: %s", problem)
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_request = slack_request(raw, request)
        if isinstance(bolt_request, str):
            log.warning("refused a signed Slack request: %s", bolt_request)
            return web.json_response({"error": "malformed request"}, status=400)
        bolt_response = await bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        if stopping is not None and stopping.is_set():
            return web.json_response({"status": "stopping", "detail": "finishing the requests in flight"}, status=503)
        report = {"database": "up"}
        try:
            await asyncio.wait_for(ping(), HEALTH_TIMEOUT_S)
        # Whatever goes wrong, the answer is the same: the database is down, and we say so.
        except Exception as err:  # noqa: BLE001
            # Named after the driver's error the store saw (or TimeoutError), as before there was a port.
            cause = err.cause_name if isinstance(err, StoreUnavailable) else type(err).__name__
            log.warning("health check: database down (%s)", cause)
            report["database"] = "down"
        if socket_connected is not None:
            report["socket"] = "connected" if await socket_connected() else "disconnected"
        if "down" in report.values() or report.get("socket") == "disconnected":
            return web.json_response({"status": "unavailable", **report}, status=503)
        return web.json_response({"status": "ok", **report})

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    if metrics is not None:
        _add_metrics_route(app, metrics)
    if bolt.oauth_flow is not None:
        _add_oauth_routes(app, bolt)
    return app


def signature_problem(
    secret: str, body: bytes, headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> str | None:
    """Why the request is not verifiably Slack's (None when it is): Slack's v0 HMAC-SHA256 over the raw body.

    Computed here, on the bytes, before Bolt parses anything: slack_sdk's SignatureVerifier raises
    on a timestamp that is not an integer, a non-ASCII signature or a body that is not UTF-8, and a
    raise inside Bolt reaches its error handler, which answers on the unverified body's response_url.
    """
    if not secret:
        return "no signing secret is configured"
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return "missing signature headers"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
        return "unreadable timestamp"
    if abs(now() - int(timestamp)) > MAX_REQUEST_AGE_S:
        return "stale timestamp"
    if not signature.isascii():
        return "unreadable signature"
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(f"v0={digest}".encode(), signature.encode()):
        return "bad signature"
    return None


def slack_request(body: bytes, request: web.Request) -> AsyncBoltRequest | str:
    """The verified body as Bolt's request, or why it is malformed (not UTF-8, not a JSON object, ...)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    try:
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=request.headers)
    # Bolt parses the body and reads its IDs while building the request: broken JSON raises ValueError,
    # and a body that is not an object (or has a field of the wrong type) fails on its first lookup.
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as err:
        return f"unreadable body ({type(err).__name__})"
    if not isinstance(bolt_request.body, dict):
        return "body is not an object"
    return shape_problem(bolt_request.body) or bolt_request


# The objects Bolt reads while routing a request, and their JSON types; a wrong one fails inside Bolt.
_OBJECTS: dict[str, tuple[type, ...]] = {
    "team": (dict, str),
    "user": (dict, str),
    "channel": (dict, str),
    "enterprise": (dict, str),
    "event": (dict,),
    "view": (dict,),
    "container": (dict,),
    "message": (dict,),
    "authorizations": (list,),
    "actions": (list,),
}
# Bolt reads these as body.get(name, {}): present, they must be objects (Slack sends `"team": null`, never these).
_NEVER_NULL = ("event", "view")
_STRINGS = (
    "type",
    "command",
    "team_id",
    "channel_id",
    "user_id",
    "enterprise_id",
    "api_app_id",
    "trigger_id",
    "response_url",
    "event_id",
    "callback_id",
    "text",
)


def shape_problem(body: dict[str, Any]) -> str | None:
    """Why a parsed body is not one Slack sends (a field of the wrong JSON type, an event without its event), or None."""
    for name, kinds in _OBJECTS.items():
        value = body.get(name)
        if (value is not None or name in _NEVER_NULL and name in body) and not isinstance(value, kinds):
            return f"{name} is a {type(value).__name__}"
    for name in ("authorizations", "actions"):
        if not all(isinstance(item, dict) for item in body.get(name) or ()):
            return f"{name} holds a non-object"
    for name in _STRINGS:
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"{name} is a {type(body[name]).__name__}"
    if body.get("type") == "event_callback" and not isinstance(body.get("event"), dict):
        return "event_callback without an event"
    if body.get("type") == "block_actions" and not body.get("actions"):
        return "block_actions without actions"
    return None


def _add_oauth_routes(app: web.Application, bolt: AsyncApp) -> None:
    """GET /slack/install and /slack/oauth_redirect, served by Bolt's OAuth flow (async_dispatch does not)."""
    flow = bolt.oauth_flow

    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

    async def oauth_redirect(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    app.router.add_get(flow.install_path, install)
    app.router.add_get(flow.redirect_uri_path, oauth_redirect)


def _add_metrics_route(app: web.Application, metrics: Metrics) -> None:
    """GET /metrics: this process's metrics in the Prometheus text format, on the same port as Slack's events."""

    async def scrape(_request: web.Request) -> web.Response:
        return web.Response(body=await metrics.scrape(), headers={"Content-Type": metrics.content_type})

    app.router.add_get("/metrics", scrape)
