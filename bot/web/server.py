"""The aiohttp application: POST /slack/events, GET /healthz, and the OAuth install routes."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.infra.db.engine import ping

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 2.0


def build_web_app(bolt: AsyncApp, engine: AsyncEngine) -> web.Application:
    """Serve Bolt on /slack/events and the database health on /healthz."""

    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(ping(engine), HEALTH_TIMEOUT_S)
        # Whatever the driver raises, the answer is the same: the database is down, and we say so.
        except Exception as err:  # noqa: BLE001
            log.warning("health check: database down (%s)", type(err).__name__)
            return web.json_response({"status": "unavailable", "database": "down"}, status=503)
        return web.json_response({"status": "ok", "database": "up"})

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    if bolt.oauth_flow is not None:
        _add_oauth_routes(app, bolt)
    return app


def _add_oauth_routes(app: web.Application, bolt: AsyncApp) -> None:
    """GET /slack/install and /slack/oauth_redirect, served by Bolt's OAuth flow (async_dispatch does not)."""
    flow = bolt.oauth_flow

    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

    async def oauth_redirect(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    app.router.add_get(flow.install_path, install)
    app.router.add_get(flow.redirect_uri_path, oauth_redirect)
