"""GET /healthz answers for the database; POST /slack/events is Bolt's."""

from __future__ import annotations

from tests.fakes.slack_signing import url_verification


async def test_healthz_is_200_when_the_database_answers(frugal):
    async with frugal.http.get(f"{frugal.url}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok", "database": "up"}


async def test_healthz_is_503_when_the_database_is_down(start_frugal, tmp_path):
    missing_dir = tmp_path / "no-such-dir" / "frugal.db"
    frugal = await start_frugal(f"sqlite:///{missing_dir}")

    async with frugal.http.get(f"{frugal.url}/healthz") as resp:
        assert resp.status == 503
        assert (await resp.json())["database"] == "down"


async def test_url_verification_is_answered(frugal):
    body, content_type = url_verification("challenge-123")
    response = await frugal.post(body, content_type)
    assert response.status == 200


async def test_unsigned_request_is_rejected(frugal):
    async with frugal.http.post(f"{frugal.url}/slack/events", data=b"command=/rewrite&text=hi") as resp:
        assert resp.status == 401
