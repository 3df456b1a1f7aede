"""The servers under test (Frugal's `frugal run`, the sync Bolt baseline) as subprocesses, and their CPU and memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.databases import throwaway_postgres

REPO = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
START_TIMEOUT_S = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """A running server under test: where to post slash commands, and its process."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the ")" ending the command name, utime and stime are the 12th and 13th fields.
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def peak_rss_mb(self) -> float:
        """Peak resident set size (VmHWM) in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's output, for error messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slack_env(slack_api_url: str, openai_url: str) -> dict[str, str]:
    """The environment both servers share: fakes' URLs, signing secret, tokens."""
    return {
        "SLACK_API_URL": slack_api_url,
        "OPENAI_BASE_URL": openai_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "OPENAI_API_KEY": "sk-bench",
    }


@contextlib.asynccontextmanager
async def frugal_server(env: dict[str, str], workdir: Path, logs: Path) -> AsyncIterator[Target]:
    """Run `frugal run --port N` (cwd ``workdir``, so no stray .env is read) until the block ends; its log goes to ``logs``."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("frugal")), "run", "--port", str(port)]
    with _subprocess("frugal", command, env, workdir, port, logs) as target:
        await _wait_healthy(target, "/healthz")
        yield target


@contextlib.asynccontextmanager
async def baseline_server(env: dict[str, str], workdir: Path, logs: Path) -> AsyncIterator[Target]:
    """Run bench/baseline_sync_app.py (sync Bolt App, lazy listeners) until the block ends; its log goes to ``logs``."""
    port = free_port()
    command = [sys.executable, str(REPO / "bench" / "baseline_sync_app.py"), "--port", str(port)]
    with _subprocess("baseline", command, env, workdir, port, logs) as target:
        await _wait_healthy(target, "/slack/events", method="POST")
        yield target


@contextlib.contextmanager
def _subprocess(
    name: str, command: list[str], env: dict[str, str], workdir: Path, port: int, logs: Path
) -> Iterator[Target]:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=os.environ | env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    target = Target(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        yield target
    finally:
        _terminate(process)
        # Kept beside the report, for whoever reads an error count.
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"load-{name}.log").write_bytes(log_path.read_bytes())


def _terminate(process: subprocess.Popen[bytes]) -> None:
    # Its own session: signal the whole group, so nothing it started is left behind.
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


async def _wait_healthy(target: Target, path: str, method: str = "GET") -> None:
    """Poll until the server answers on ``path`` (any HTTP answer below 500 for the baseline's POST)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if target.process.poll() is not None:
                raise RuntimeError(f"{target.name} exited at start:\n{target.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.request(method, target.url + path) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{target.name} did not come up in {START_TIMEOUT_S:.0f}s:\n{target.log_tail()}")


@contextlib.asynccontextmanager
async def database(kind: str, workdir: Path, postgres_url: str) -> AsyncIterator[str]:
    """A DATABASE_URL for one run: a temp SQLite file, or a throwaway PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'frugal-bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    async with throwaway_postgres(postgres_url) as url:
        yield url
