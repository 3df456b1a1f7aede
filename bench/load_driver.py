"""The closed-loop load: N virtual users, each sending a signed /rewrite and waiting for its reply before the next."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import aiohttp

from bench.load_fakes import ReplyArrival
from bench.load_targets import SIGNING_SECRET, Target
from tests.fakes.slack_signing import sign_request, slash_command

ACK_TIMEOUT_S = 3.0  # Slack gives up on an acknowledgement after 3 s
ERROR_PAUSE_S = 0.05


@dataclass(frozen=True)
class Sample:
    """One slash command: when it was sent, acknowledged, answered (time.time()), and how it went."""

    sent: float
    acked: float | None
    replied: float | None
    error: str | None


@dataclass
class LoadResult:
    """Every sample of a run, the measurement window, and the server's CPU and memory over it."""

    samples: list[Sample]
    window: tuple[float, float]
    cpu_seconds: float
    peak_rss_mb: float
    duplicate_replies: int = 0
    late_replies: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class ReplyInbox:
    """Matches reply arrivals from the fake Slack's pipe to the futures of the requests waiting for them."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self._waiting: dict[str, asyncio.Future[ReplyArrival]] = {}
        self._answered: set[str] = set()
        self.duplicates = 0
        self.late = 0

    def expect(self, name: str) -> asyncio.Future[ReplyArrival]:
        """A future resolved when a reply to response URL ``name`` arrives."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[name] = future
        return future

    def forget(self, name: str) -> None:
        """Stop waiting for ``name`` (a reply arriving later counts as late)."""
        self._waiting.pop(name, None)

    def drain_pipe(self) -> None:
        """Read every arrival queued on the pipe (called when it is readable)."""
        try:
            while self.pipe.poll():
                arrival: ReplyArrival = self.pipe.recv()
                future = self._waiting.pop(arrival.name, None)
                if arrival.name in self._answered:
                    self.duplicates += 1
                elif future is None or future.done():
                    self.late += 1
                else:
                    future.set_result(arrival)
                self._answered.add(arrival.name)
        except EOFError:
            # The fake Slack is gone: no reply can come any more, so every waiting request fails now.
            asyncio.get_running_loop().remove_reader(self.pipe.fileno())
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(RuntimeError("the fake Slack process stopped"))


@dataclass(frozen=True)
class LoadPlan:
    """How hard and how long to push: users, seconds of warm-up and measurement, reply timeout."""

    concurrency: int
    warmup: float
    duration: float
    reply_timeout: float


async def drive(target: Target, plan: LoadPlan, inbox: ReplyInbox, response_url: Callable[[str], str]) -> LoadResult:
    """Run ``plan`` against ``target``; requests stop at the window's end, then in-flight ones finish or time out."""
    loop = asyncio.get_running_loop()
    loop.add_reader(inbox.pipe.fileno(), inbox.drain_pipe)
    duplicates_before, late_before = inbox.duplicates, inbox.late
    start = time.time()
    window = (start + plan.warmup, start + plan.warmup + plan.duration)
    samples: list[Sample] = []
    ids = itertools.count(1)
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            users = [
                _virtual_user(user, target, plan, window[1], inbox, response_url, http, ids, samples)
                for user in range(plan.concurrency)
            ]
            cpu_task = asyncio.create_task(_cpu_over(target, window))
            await asyncio.gather(*users)
            cpu_seconds = await cpu_task
    finally:
        loop.remove_reader(inbox.pipe.fileno())
    errors: dict[str, int] = {}
    for sample in samples:
        if sample.error is not None:
            errors[sample.error] = errors.get(sample.error, 0) + 1
    duplicates, late = inbox.duplicates - duplicates_before, inbox.late - late_before
    return LoadResult(samples, window, cpu_seconds, target.peak_rss_mb(), duplicates, late, errors)


async def _cpu_over(target: Target, window: tuple[float, float]) -> float:
    """CPU seconds the target spends between the window's two instants."""
    await asyncio.sleep(max(0.0, window[0] - time.time()))
    before = target.cpu_seconds()
    await asyncio.sleep(max(0.0, window[1] - time.time()))
    return target.cpu_seconds() - before


async def _virtual_user(
    user: int,
    target: Target,
    plan: LoadPlan,
    stop_at: float,
    inbox: ReplyInbox,
    response_url: Callable[[str], str],
    http: aiohttp.ClientSession,
    ids: itertools.count[int],
    samples: list[Sample],
) -> None:
    while time.time() < stop_at:
        name = f"{target.name}-{next(ids)}"
        sample = await _one_command(user, name, target, plan, inbox, response_url(name), http)
        samples.append(sample)
        if sample.error is not None:
            # A failing server must not turn the closed loop into a busy loop.
            await asyncio.sleep(ERROR_PAUSE_S)


async def _one_command(
    user: int,
    name: str,
    target: Target,
    plan: LoadPlan,
    inbox: ReplyInbox,
    response_url: str,
    http: aiohttp.ClientSession,
) -> Sample:
    marker = f"request {name}"
    body, content_type = slash_command(
        "/rewrite", f"please tidy up this sentence, {marker}", user_id=f"U{user:05d}",
        trigger_id=f"{name}.{user}.bench", response_url=response_url,
    )
    headers = sign_request(SIGNING_SECRET, body) | {"Content-Type": content_type}
    reply = inbox.expect(name)
    sent = time.time()
    try:
        try:
            async with http.post(target.url + "/slack/events", data=body, headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=ACK_TIMEOUT_S)) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            return Sample(sent, None, None, "no ack within 3 s" if isinstance(err, TimeoutError) else f"ack failed: {type(err).__name__}")
        acked = time.time()
        if status != 200:
            return Sample(sent, acked, None, f"ack HTTP {status}")
        try:
            arrival = await asyncio.wait_for(reply, plan.reply_timeout)
        except TimeoutError:
            return Sample(sent, acked, None, "no reply in time")
        error = None if marker in arrival.text else "reply is not the rewrite"
        return Sample(sent, acked, arrival.at, error)
    finally:
        inbox.forget(name)
