"""GET /healthz answers for the database; POST /slack/events is Bolt's."""

from __future__ import annotations

import logging

from tests.fakes.slack_signing import url_verification


async def test_healthz_is_200_when_the_database_answers(frugal):
    async with frugal.http.get(f"{frugal.url}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok", "database": "up"}


async def test_healthz_is_503_when_the_database_is_down(start_frugal, tmp_path, caplog):
    missing_dir = tmp_path / "no-such-dir" / "frugal.db"
    frugal = await start_frugal(f"sqlite:///{missing_dir}")

    with caplog.at_level(logging.WARNING, logger="bot.web.server"):
        async with frugal.http.get(f"{frugal.url}/healthz") as resp:
            assert resp.status == 503
            assert (await resp.json())["database"] == "down"

    # The driver's error, named as the port's StoreUnavailable carries it.
    assert "health check: database down (OperationalError)" in caplog.messages


async def test_url_verification_is_answered(frugal):
    body, content_type = url_verification("challenge-123")
    response = await frugal.post(body, content_type)
    assert response.status == 200


async def test_unsigned_request_is_rejected(frugal):
    async with frugal.http.post(f"{frugal.url}/slack/events", data=b"command=/rewrite&text=hi") as resp:
        assert resp.status == 401


async def test_in_socket_mode_healthz_reports_the_socket_too(frugal, fake_slack):
    from aiohttp import web
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.web.server import build_web_app

    handler = AsyncSocketModeHandler(frugal.container.bolt, "xapp-1-A0001-1-test")
    app = build_web_app(frugal.container.bolt, frugal.container.ping, socket_connected=handler.client.is_connected)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/healthz"

    async def health() -> tuple[int, dict]:
        async with frugal.http.get(url) as resp:
            return resp.status, await resp.json()

    try:
        before = await health()
        await handler.connect_async()
        await fake_slack.await_calls("socket_connect")
        connected = await health()
        await handler.close_async()
        closed = await health()
    finally:
        await handler.close_async()
        await runner.cleanup()

    assert before == (503, {"status": "unavailable", "database": "up", "socket": "disconnected"})
    assert connected == (200, {"status": "ok", "database": "up", "socket": "connected"})
    assert closed == (503, {"status": "unavailable", "database": "up", "socket": "disconnected"})
