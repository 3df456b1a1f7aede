"""`frugal run` as a real process against the fakes: signed requests in, signals and kill -9 as an operator sends them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.composition import build_container
from bot.config import Settings
from bot.infra.db.quota_tables import QuotaCounterRow, QuotaReservationRow
from bot.infra.db.tables import LedgerRow
from bot.ports.quota_store import Scope
from bot.services.quota_spec import parse_limit
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_signing import sign_request, slash_command

START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FrugalProcess:
    """One `python -m bot run` process, its log in a file, and a signed-request client for it."""

    database_url: str
    fake_openai: FakeOpenAI
    fake_slack: FakeSlack
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """Where it serves."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Its stdout and stderr."""
        return self.workdir / f"frugal-{self.port}.log"

    def output(self) -> str:
        """What it printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self) -> FrugalProcess:
        """Start it and return once /healthz answers 200."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "FRUGAL_", "DATABASE_"))}
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.fake_slack.api_url,
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=self.fake_openai.api_url,
            FRUGAL_MODELS="gpt-4.1-nano,gpt-4o-mini",
            DATABASE_URL=self.database_url,
            PORT=str(self.port),
            **self.env,
        )
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        self.http = aiohttp.ClientSession()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise AssertionError(f"frugal run exited early ({self.process.returncode}):\n{self.output()}")
            try:
                if await self.health() == 200:
                    return self
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"frugal run did not become healthy within {START_TIMEOUT_S} s:\n{self.output()}")

    async def health(self) -> int:
        """The status /healthz answers."""
        assert self.http is not None
        async with self.http.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=3)) as resp:
            await resp.read()
            return resp.status

    async def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> int:
        """POST a request signed as Slack signs it; the HTTP status."""
        assert self.http is not None
        all_headers = {"Content-Type": content_type, **sign_request(SIGNING_SECRET, body), **(headers or {})}
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(), headers=all_headers) as resp:
            await resp.read()
            return resp.status

    async def command(self, command: str, text: str, **fields: Any) -> tuple[int, str]:
        """A signed slash command; its HTTP status and the name of its response_url at the fake Slack."""
        name = f"r{uuid.uuid4().hex[:8]}"
        body, content_type = slash_command(command, text, response_url=self.fake_slack.response_url(name), **fields)
        return await self.post(body, content_type), name

    def signal(self, sig: signal.Signals) -> None:
        """Send it a signal (SIGTERM as a platform stopping it, SIGKILL as a crash)."""
        assert self.process is not None
        self.process.send_signal(sig)

    async def exited(self, timeout: float) -> int:
        """Its exit code, once it has exited (AssertionError if it is still running after ``timeout`` s)."""
        assert self.process is not None
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"frugal run still running after {timeout} s:\n{self.output()}") from None

    async def close(self) -> None:
        """Stop it if it still runs (kill -9: the test is over) and close the client."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self.http is not None:
            await self.http.close()


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once ``condition()`` holds; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


def chat_calls(fake_openai: FakeOpenAI) -> int:
    """How many Chat Completions calls the fake model has received."""
    return sum(1 for request in fake_openai.requests if request.path.endswith("/chat/completions"))


async def set_channel_quota(settings: Settings, spec: str, channel: str = "C0001", team: str = "T0001") -> None:
    """Put a limit on a channel, as `/frugal quota set here ...` does, before a process serves it."""
    container = build_container(settings)
    try:
        await container.quota.set_limit(team, Scope.CHANNEL, channel, parse_limit(spec), set_by="UADMIN")
    finally:
        await container.aclose()


@dataclass(frozen=True)
class Books:
    """What the database says was charged: ledger rows, and the quota counters and holds."""

    rows: list[Any]
    used: Decimal
    reserved: Decimal
    holds: int


async def books(database_url: str) -> Books:
    """Read the ledger and the quota counters (a connection of the test's own: the process may be gone)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = list((await conn.execute(select(LedgerRow).order_by(LedgerRow.id))).all())
            used, reserved = (
                await conn.execute(
                    select(
                        func.coalesce(func.sum(QuotaCounterRow.used), 0),
                        func.coalesce(func.sum(QuotaCounterRow.reserved), 0),
                    )
                )
            ).one()
            holds = (await conn.execute(select(func.count()).select_from(QuotaReservationRow))).scalar_one()
    finally:
        await engine.dispose()
    return Books(rows=rows, used=Decimal(str(used)), reserved=Decimal(str(reserved)), holds=holds)
