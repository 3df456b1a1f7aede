"""Shared fixtures: real-HTTP fakes of Slack and OpenAI, migrated databases, a running Frugal."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from sqlalchemy.engine import make_url

from bot.composition import Container, build_container
from bot.config import Settings, load_settings, normalize_database_url
from bot.infra.db.migrate import upgrade
from bot.web.server import build_web_app
from tests.bolt_tasks import settle_listeners
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_signing import sign_request

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# --- fakes -------------------------------------------------------------------


@pytest.fixture(scope="session")
def _openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="session")
def _slack_server() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def fake_openai(_openai_server: FakeOpenAI) -> FakeOpenAI:
    """The fake OpenAI server, reset for this test."""
    _openai_server.reset()
    return _openai_server


@pytest.fixture
def fake_slack(_slack_server: FakeSlack) -> FakeSlack:
    """The fake Slack Web API, reset for this test."""
    _slack_server.reset()
    return _slack_server


# --- databases ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database for this test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield normalize_database_url(f"sqlite:///{tmp_path / 'frugal.db'}")
        return
    async with postgres_database(drop_later=True) as url:
        yield url


# Databases of finished tests, dropped by the next one's setup (or at the session's end): see drop_later.
_to_drop: list[str] = []


class postgres_database:
    """A throwaway PostgreSQL database (async context manager yielding its URL).

    With ``drop_later``, the database outlives the block until the next throwaway database is made (or the
    session ends). A test asking for ``start_frugal`` before its database has its Frugal closed only after
    the database fixture's teardown: dropped then, the app would lose its connections mid-teardown (its
    pending done marks and ledger rows with them), and ``DROP DATABASE ... WITH (FORCE)`` would wait, in
    100 ms steps, for those connections' backends to exit.
    """

    def __init__(self, template: str | None = None, *, drop_later: bool = False) -> None:
        self._template = template
        self._drop_later = drop_later
        base = os.environ.get("TEST_DATABASE_URL")
        if not base:
            if IN_CI:
                pytest.fail("TEST_DATABASE_URL is not set in CI: the PostgreSQL tests must run")
            pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)")
        self._base = make_url(normalize_database_url(base))
        self._name = f"frugal_t_{uuid.uuid4().hex[:12]}"

    async def _admin(self) -> asyncpg.Connection:
        url = self._base
        return await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
        )

    async def __aenter__(self) -> str:
        conn = await self._admin()
        try:
            await _drop_pending(conn)
            template = f' TEMPLATE "{self._template}"' if self._template else ""
            await conn.execute(f'CREATE DATABASE "{self._name}"{template}')
        finally:
            await conn.close()
        return self._base.set(database=self._name).render_as_string(hide_password=False)

    async def __aexit__(self, *exc: object) -> None:
        _to_drop.append(self._name)
        if self._drop_later:
            return
        conn = await self._admin()
        try:
            await _drop_pending(conn)
        finally:
            await conn.close()


async def _drop_pending(conn: asyncpg.Connection) -> None:
    while _to_drop:
        await conn.execute(_drop(_to_drop[-1]))
        _to_drop.pop()


def _drop(name: str) -> str:
    return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


@pytest.fixture(scope="session", autouse=True)
def _drop_the_last_databases() -> Iterator[None]:
    """At the session's end, drop the databases still waiting for a next test's setup."""
    yield
    if _to_drop and (base := os.environ.get("TEST_DATABASE_URL")):
        asyncio.run(_admin_execute(make_url(normalize_database_url(base)), *map(_drop, _to_drop)))
        _to_drop.clear()


@pytest.fixture(scope="session")
def _migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One database per backend with every migration applied, made once per session; tests get copies.

    The real migrations still run (here, and on their own in tests/infra/db/test_migrate.py); copying
    their result saves each test the upgrade, which is most of a short test's time.
    """
    templates: dict[str, str] = {}
    sqlite_file = tmp_path_factory.mktemp("template") / "frugal.db"
    asyncio.run(upgrade(normalize_database_url(f"sqlite:///{sqlite_file}")))
    templates["sqlite"] = str(sqlite_file)
    base = os.environ.get("TEST_DATABASE_URL")
    name = f"frugal_tpl_{uuid.uuid4().hex[:12]}"
    if base:
        url = make_url(normalize_database_url(base))
        asyncio.run(_admin_execute(url, f'CREATE DATABASE "{name}"'))
        asyncio.run(upgrade(url.set(database=name).render_as_string(hide_password=False)))
        templates["postgres"] = name
    yield templates
    if base:
        asyncio.run(_admin_execute(make_url(normalize_database_url(base)), _drop(name)))


async def _admin_execute(url: Any, *statements: str) -> None:
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def migrated_url(
    request: pytest.FixtureRequest, tmp_path: Path, _migrated_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A database for this test with every migration applied, as `frugal migrate` does (SQLite and PostgreSQL)."""
    if request.param == "sqlite":
        target = tmp_path / "frugal.db"
        template = Path(_migrated_templates["sqlite"])
        shutil.copyfile(template, target)
        for suffix in ("-wal", "-shm"):  # a write-ahead log not yet folded in would hold part of the schema
            if (sidecar := template.with_name(template.name + suffix)).exists():
                shutil.copyfile(sidecar, target.with_name(target.name + suffix))
        yield normalize_database_url(f"sqlite:///{target}")
        return
    async with postgres_database(template=_migrated_templates.get("postgres"), drop_later=True) as url:
        yield url


# --- settings and a running Frugal -----------------------------------------


@pytest.fixture
def make_settings(fake_openai: FakeOpenAI, fake_slack: FakeSlack) -> Callable[..., Settings]:
    """Build Settings pointing at the fakes; keyword arguments override variables."""

    def make(database_url: str, **overrides: str) -> Settings:
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url,
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": fake_openai.api_url,
            "DATABASE_URL": database_url,
            # The fake's gateway-style listing (tests/fakes/openai_server.py DEFAULT_MODELS); tests of the
            # default chain pass FRUGAL_MODELS="" (empty: the default).
            "FRUGAL_MODELS": "gpt-4.1-nano,gpt-4o-mini",
        }
        env.update(overrides)
        return load_settings(env, dotenv_path=None)

    return make


@dataclass
class RunningFrugal:
    """A Frugal process's web app on a real port, and a way to talk to it as Slack does."""

    url: str
    container: Container
    http: aiohttp.ClientSession
    fake_slack: FakeSlack

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """POST a signed request to /slack/events and read the response."""
        all_headers = {"Content-Type": content_type, **sign_request(secret, body, timestamp), **(headers or {})}
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(), headers=all_headers) as resp:
            await resp.read()
            return resp

    async def command(self, command: str, text: str, **fields: Any) -> tuple[aiohttp.ClientResponse, str]:
        """Send a signed slash command; returns the response and its response_url name."""
        from tests.fakes.slack_signing import slash_command

        name = f"r{uuid.uuid4().hex[:8]}"
        fields.setdefault("response_url", self.fake_slack.response_url(name))
        body, content_type = slash_command(command, text, **fields)
        return await self.post(body, content_type), name


@pytest.fixture
async def start_frugal(
    make_settings: Callable[..., Settings], fake_slack: FakeSlack
) -> AsyncIterator[Callable[..., Any]]:
    """Start Frugal's real web app on 127.0.0.1 with the given database and variables."""
    started: list[tuple[web.AppRunner, Container, aiohttp.ClientSession]] = []
    workers_before = _sqlite_workers()

    async def start(database_url: str, **overrides: str) -> RunningFrugal:
        container = build_container(make_settings(database_url, **overrides))
        runner = web.AppRunner(build_web_app(container.bolt, container.ping, container.metrics))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        http = aiohttp.ClientSession()
        started.append((runner, container, http))
        return RunningFrugal(url=f"http://127.0.0.1:{port}", container=container, http=http, fake_slack=fake_slack)

    yield start
    # No listener may still be writing when its database is closed.
    await settle_listeners()
    for runner, container, http in started:
        await http.close()
        await runner.cleanup()
        await container.aclose()
    await _sqlite_workers_end(_sqlite_workers() - workers_before)


def _sqlite_workers() -> set[threading.Thread]:
    """aiosqlite's worker threads (one per connection, named after its target function)."""
    return {thread for thread in threading.enumerate() if thread.name.endswith("(_connection_worker_thread)")}


async def _sqlite_workers_end(workers: set[threading.Thread], timeout: float = 5.0) -> None:
    """Wait, with the event loop still running, for the aiosqlite threads a test started to end.

    A connection that failed to open (a database file in a missing folder) stops its thread without
    waiting for it; if the thread gets to its last step only after the test's loop is closed, it dies
    with "Event loop is closed", which pytest reports against the next test.
    """
    for thread in workers:
        await asyncio.to_thread(thread.join, timeout)


@pytest.fixture
async def frugal(start_frugal: Callable[..., Any], migrated_url: str) -> RunningFrugal:
    """A running Frugal on a migrated database (SQLite and PostgreSQL)."""
    return await start_frugal(migrated_url)
