"""The load: signed /rewrite slash commands, in a closed loop (N users) or an open loop (N commands a second)."""

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
USERS = 1000  # distinct Slack users the open loop's commands come from
_RUNS = itertools.count(1)  # each run's commands get names of their own: the reply inbox outlives a run


@dataclass(frozen=True)
class Sample:
    """One slash command: when it was sent, acknowledged, answered (time.time()), and how it went."""

    sent: float
    acked: float | None
    replied: float | None
    error: str | None


@dataclass
class LoadResult:
    """Every sample of a run, the measurement window, the server's CPU and memory over it, commands in flight (open loop)."""

    samples: list[Sample]
    window: tuple[float, float]
    cpu_seconds: float
    peak_rss_mb: float
    in_flight: list[int] = field(default_factory=list)
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
        self._late_names: list[str] = []
        self._duplicate_names: list[str] = []

    def expect(self, name: str) -> asyncio.Future[ReplyArrival]:
        """A future resolved when a reply to response URL ``name`` arrives."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[name] = future
        return future

    def forget(self, name: str) -> None:
        """Stop waiting for ``name`` (a reply arriving later counts as late)."""
        self._waiting.pop(name, None)

    def strays(self, prefix: str) -> tuple[int, int]:
        """Duplicate and late replies to commands named ``prefix-...`` (a run's own, not an earlier server's)."""
        mine = f"{prefix}-"
        return (
            sum(n.startswith(mine) for n in self._duplicate_names),
            sum(n.startswith(mine) for n in self._late_names),
        )

    def drain_pipe(self) -> None:
        """Read every arrival queued on the pipe (called when it is readable)."""
        try:
            while self.pipe.poll():
                arrival: ReplyArrival = self.pipe.recv()
                future = self._waiting.pop(arrival.name, None)
                if arrival.name in self._answered:
                    self.duplicates += 1
                    self._duplicate_names.append(arrival.name)
                elif future is None or future.done():
                    self.late += 1
                    self._late_names.append(arrival.name)
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
    """How hard and how long to push: users (closed loop) or commands a second (open loop), seconds, reply timeout.

    Closed loop: ``concurrency`` users, each sending a command and waiting for its reply before the next.
    Open loop (``rate`` set): commands sent evenly at ``rate`` a second whatever the answers, as Slack's
    many independent users do; then concurrency is what is in flight, ``rate`` x the time a command takes.
    """

    concurrency: int
    warmup: float
    duration: float
    reply_timeout: float
    rate: float | None = None


async def drive(target: Target, plan: LoadPlan, inbox: ReplyInbox, response_url: Callable[[str], str]) -> LoadResult:
    """Run ``plan`` against ``target``; requests stop at the window's end, then in-flight ones finish or time out."""
    loop = asyncio.get_running_loop()
    loop.add_reader(inbox.pipe.fileno(), inbox.drain_pipe)
    start = time.time()
    window = (start + plan.warmup, start + plan.warmup + plan.duration)
    samples: list[Sample] = []
    in_flight: list[int] = []
    ids = itertools.count(1)
    prefix = f"{target.name}{next(_RUNS)}"
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            cpu_task = asyncio.create_task(_cpu_over(target, window))
            if plan.rate is None:
                await asyncio.gather(
                    *(
                        _virtual_user(user, prefix, target, plan, window[1], inbox, response_url, http, ids, samples)
                        for user in range(plan.concurrency)
                    )
                )
            else:
                in_flight = await _open_loop(prefix, target, plan, window, inbox, response_url, http, samples)
            cpu_seconds = await cpu_task
    finally:
        loop.remove_reader(inbox.pipe.fileno())
    errors: dict[str, int] = {}
    for sample in samples:
        if sample.error is not None:
            errors[sample.error] = errors.get(sample.error, 0) + 1
    # Counted by name: a reply the previous server posted just before it was stopped is not this run's.
    duplicates, late = inbox.strays(prefix)
    return LoadResult(samples, window, cpu_seconds, target.peak_rss_mb(), in_flight, duplicates, late, errors)


async def _cpu_over(target: Target, window: tuple[float, float]) -> float:
    """CPU seconds the target spends between the window's two instants."""
    await asyncio.sleep(max(0.0, window[0] - time.time()))
    before = target.cpu_seconds()
    await asyncio.sleep(max(0.0, window[1] - time.time()))
    return target.cpu_seconds() - before


async def _open_loop(
    prefix: str,
    target: Target,
    plan: LoadPlan,
    window: tuple[float, float],
    inbox: ReplyInbox,
    response_url: Callable[[str], str],
    http: aiohttp.ClientSession,
    samples: list[Sample],
) -> list[int]:
    """Send a command every 1/rate s until the window ends; returns the commands in flight, sampled each 100 ms in the window."""
    assert plan.rate is not None
    pending: set[asyncio.Task[None]] = set()
    in_flight: list[int] = []
    started = time.monotonic()
    next_sample = 0.0

    async def one(number: int) -> None:
        name = f"{prefix}-{number}"
        samples.append(await _one_command(number % USERS, name, target, plan, inbox, response_url(name), http))

    for number in itertools.count(1):
        # Sent on a fixed schedule: a slow server does not slow the arrivals down (no coordinated omission).
        due = started + (number - 1) / plan.rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        if time.time() >= window[1]:
            break
        if time.time() >= window[0] and time.monotonic() >= next_sample:
            in_flight.append(len(pending))
            next_sample = time.monotonic() + 0.1
        task = asyncio.create_task(one(number))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return in_flight


async def _virtual_user(
    user: int,
    prefix: str,
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
        name = f"{prefix}-{next(ids)}"
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
        "/rewrite",
        f"please tidy up this sentence, {marker}",
        user_id=f"U{user:05d}",
        trigger_id=f"{name}.{user}.bench",
        response_url=response_url,
    )
    headers = sign_request(SIGNING_SECRET, body) | {"Content-Type": content_type}
    reply = inbox.expect(name)
    sent = time.time()
    try:
        try:
            async with http.post(
                target.url + "/slack/events",
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=ACK_TIMEOUT_S),
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            return Sample(
                sent,
                None,
                None,
                "no ack within 3 s" if isinstance(err, TimeoutError) else f"ack failed: {type(err).__name__}",
            )
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
