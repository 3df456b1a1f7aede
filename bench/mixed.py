"""Mixed-traffic benchmark: `frugal run` under /rewrite, /classify, /usage, @mentions and button clicks at once.

Slack's traffic is not one command: most deliveries are /rewrite (acknowledged while their once-only
claim is still in flight), but /usage, events and button clicks are claimed *before* their ack, so
their ack waits for a database write. This drives an open loop of signed requests at --rate a second,
in a fixed mix out of every 20: 12 /rewrite, 2 /classify, 2 /usage, 2 @mentions ("rewrite ..."), 2
clicks on a "Try another style" button of an earlier /rewrite answer (its value as Frugal put it
there), spread over 20 channels and 1,000 users.

What it measures: acknowledgement latency p50/p99 per kind and overall (the HTTP answer to each
delivery; Slack gives up at 3 s), completed replies per second (a reply is the response_url POST, or
for a mention the chat.postMessage in its thread, reaching the fake Slack and being the answer, not
an error), the server's CPU per reply and peak RSS, and what else used the CPUs meanwhile (every
other process's CPU seconds over the window, from /proc).

The fake OpenAI (every answer delayed by --model-latency) and the fake Slack run in their own
processes, `frugal run` in its own. Run from the repository root, with the virtualenv active:

    python bench/mixed.py [--rate 50] [--duration 30] [--warmup 3] [--model-latency 1.0] [--database sqlite|postgres] [--quota]

--quota first sets a workspace default limit (requests and USD a month, never reached), so that every
model call reserves and settles its worst case, as in a workspace whose admins set quotas.

It prints a markdown table and writes it to bench/results/mixed-<database>.md (or --output).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import start_counting_openai  # noqa: E402
from bench.load import DEFAULT_POSTGRES, machine, number, percentile  # noqa: E402
from bench.load_fakes import START_TIMEOUT_S  # noqa: E402
from bench.load_targets import REPO, SIGNING_SECRET, Target, database, frugal_server, slack_env  # noqa: E402
from tests.fakes.slack_server import Call, FakeSlack  # noqa: E402
from tests.fakes.slack_signing import (  # noqa: E402
    app_mention_event,
    block_actions,
    event_callback,
    sign_request,
    slash_command,
)

RESULTS = REPO / "bench" / "results"
ACK_TIMEOUT_S = 3.0
TARGET_ACK_P99_MS = 100
# Out of every 20 deliveries: 60 % /rewrite, 10 % each of the rest.
MIX = ("rewrite",) * 12 + ("classify",) * 2 + ("usage",) * 2 + ("mention",) * 2 + ("click",) * 2
KINDS = ("rewrite", "classify", "usage", "mention", "click")
CHANNELS = 20
USERS = 1000
STYLE_ACTION_PREFIX = "rewrite_style_"
FAILURE_WORDS = ("something went wrong", "No model could answer", "already being answered")


# --- the fake Slack, reporting every reply the moment it arrives --------------------


@dataclass(frozen=True)
class Arrival:
    """A reply as the fake Slack saw it: its name (response URL, or thread:<ts>), when, its text, a style button."""

    name: str
    at: float
    text: str
    button: tuple[str, str] | None = None  # (action_id, value) of a "Try another style" button


class ReportingSlack(FakeSlack):
    """FakeSlack that sends every response_url POST and threaded chat.postMessage down a pipe."""

    def __init__(self, events: Connection) -> None:
        self._events = events
        super().__init__()

    def _record(self, call: Call) -> None:
        super()._record(call)
        if call.method.startswith("response_url:"):
            name = call.method.removeprefix("response_url:")
        elif call.method == "chat.postMessage" and call.params.get("thread_ts"):
            name = f"thread:{call.params['thread_ts']}"
        else:
            return
        self._events.send(Arrival(name, call.at, str(call.params.get("text", "")), _style_button(call.params)))


def _style_button(params: dict) -> tuple[str, str] | None:
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for block in blocks or []:
        for element in block.get("elements", []) if isinstance(block, dict) else []:
            if isinstance(element, dict) and str(element.get("action_id", "")).startswith(STYLE_ACTION_PREFIX):
                return element["action_id"], element.get("value", "")
    return None


@dataclass
class SlackProcess:
    """The fake Slack's process and the pipe its replies come on."""

    api_url: str
    base_url: str
    replies: Connection
    process: multiprocessing.process.BaseProcess
    control: Connection

    def stop(self) -> None:
        """Stop the fake and make sure its process is gone."""
        try:
            self.control.send("stop")
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


def start_slack() -> SlackProcess:
    """The reporting fake Slack in a process of its own."""
    context = multiprocessing.get_context("spawn")
    replies_in, replies_out = context.Pipe(duplex=False)
    control, child = context.Pipe()
    process = context.Process(target=_serve_slack, args=(child, replies_out), daemon=True)
    process.start()
    if not control.poll(START_TIMEOUT_S):
        process.kill()
        raise RuntimeError("the fake Slack did not start in time")
    api_url, base_url = control.recv()
    return SlackProcess(api_url, base_url, replies_in, process, control)


def _serve_slack(control: Connection, events: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with ReportingSlack(events) as fake:
        control.send((fake.api_url, fake.base_url))
        try:
            while control.recv() != "stop":
                pass
        except (EOFError, OSError):
            pass


# --- the load ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One delivery: its kind, when it was sent, acknowledged, answered (time.time()), and how it went."""

    kind: str
    sent: float
    acked: float | None
    replied: float | None
    error: str | None


@dataclass
class Inbox:
    """Matches reply arrivals to the deliveries waiting for them; keeps style buttons for later clicks."""

    pipe: Connection
    waiting: dict[str, asyncio.Future[Arrival]] = field(default_factory=dict)
    buttons: list[tuple[int, int, str, str]] = field(default_factory=list)  # (channel, user, action_id, value)
    late: int = 0

    def expect(self, name: str) -> asyncio.Future[Arrival]:
        """A future resolved when the reply named ``name`` arrives."""
        future = asyncio.get_running_loop().create_future()
        self.waiting[name] = future
        return future

    def drain(self) -> None:
        """Read every arrival queued on the pipe (called when it is readable)."""
        while self.pipe.poll():
            arrival: Arrival = self.pipe.recv()
            future = self.waiting.pop(arrival.name, None)
            if future is None or future.done():
                self.late += 1
            else:
                future.set_result(arrival)


@dataclass
class Run:
    """Everything one run measured."""

    samples: list[Sample]
    window: tuple[float, float]
    cpu_seconds: float
    peak_rss_mb: float
    others: list[tuple[str, float]]
    late: int


async def drive(
    target: Target, rate: float, warmup: float, duration: float, reply_timeout: float, slack: SlackProcess
) -> Run:
    """Send the mix at ``rate`` a second until the window ends, then wait for the replies still due."""
    loop = asyncio.get_running_loop()
    inbox = Inbox(slack.replies)
    loop.add_reader(slack.replies.fileno(), inbox.drain)
    samples: list[Sample] = []
    pending: set[asyncio.Task[None]] = set()
    start = time.time()
    window = (start + warmup, start + warmup + duration)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            cpu = asyncio.create_task(_cpu_over(target, window))
            started = time.monotonic()
            for number in itertools.count(1):
                due = started + (number - 1) / rate
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                if time.time() >= window[1]:
                    break
                kind = MIX[(number - 1) % len(MIX)]
                task = asyncio.create_task(_one(kind, number, target, http, inbox, slack, reply_timeout, samples))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)
            cpu_seconds, others = await cpu
    finally:
        loop.remove_reader(slack.replies.fileno())
    return Run(samples, window, cpu_seconds, target.peak_rss_mb(), others, inbox.late)


async def _one(
    kind: str,
    number: int,
    target: Target,
    http: aiohttp.ClientSession,
    inbox: Inbox,
    slack: SlackProcess,
    reply_timeout: float,
    samples: list[Sample],
) -> None:
    channel, user = number % CHANNELS, number % USERS
    marker = f"request m{number}"
    name = f"m{number}"
    if kind == "click" and not inbox.buttons:
        kind = "rewrite"  # no answer with a button has arrived yet
    if kind == "rewrite":
        body = slash_command(
            "/rewrite",
            f"please tidy up this sentence, {marker}",
            **_who(channel, user, number),
            response_url=f"{slack.base_url}/response/{name}",
        )
    elif kind == "classify":
        body = slash_command(
            "/classify",
            f"is this a question or a bug report, {marker}",
            **_who(channel, user, number),
            response_url=f"{slack.base_url}/response/{name}",
        )
    elif kind == "usage":
        body = slash_command(
            "/usage", "", **_who(channel, user, number), response_url=f"{slack.base_url}/response/{name}"
        )
    elif kind == "mention":
        event = app_mention_event(
            f"<@UBOT> rewrite make this friendlier, {marker}",
            channel=f"C{channel:05d}",
            user=f"U{user:05d}",
            ts=f"{int(time.time())}.{number:06d}",
        )
        name = f"thread:{event['ts']}"
        body = event_callback(event, event_id=f"Ev{number:08d}x{os.getpid()}")
    else:
        channel, user, action_id, value = inbox.buttons[number % len(inbox.buttons)]
        body = block_actions(
            action_id,
            value,
            channel_id=f"C{channel:05d}",
            user_id=f"U{user:05d}",
            trigger_id=f"{number}.{user}.mixed",
            response_url=f"{slack.base_url}/response/{name}",
        )
    text, content_type = body
    reply = inbox.expect(name)
    headers = sign_request(SIGNING_SECRET, text) | {"Content-Type": content_type}
    sent = time.time()
    try:
        async with http.post(
            target.url + "/slack/events", data=text, headers=headers, timeout=aiohttp.ClientTimeout(total=ACK_TIMEOUT_S)
        ) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as err:
        inbox.waiting.pop(name, None)
        error = "no ack within 3 s" if isinstance(err, TimeoutError) else f"ack failed: {type(err).__name__}"
        samples.append(Sample(kind, sent, None, None, error))
        return
    acked = time.time()
    if status != 200:
        inbox.waiting.pop(name, None)
        samples.append(Sample(kind, sent, acked, None, f"ack HTTP {status}"))
        return
    try:
        arrival = await asyncio.wait_for(reply, reply_timeout)
    except TimeoutError:
        inbox.waiting.pop(name, None)
        samples.append(Sample(kind, sent, acked, None, "no reply in time"))
        return
    error = None
    if any(word in arrival.text for word in FAILURE_WORDS):
        error = f"{kind} answered with an error"
    elif kind in ("rewrite", "mention") and marker not in arrival.text:
        error = f"{kind} reply is not the rewrite"
    if kind == "rewrite" and arrival.button is not None and len(inbox.buttons) < 200:
        inbox.buttons.append((channel, user, *arrival.button))
    samples.append(Sample(kind, sent, acked, arrival.at, error))


def _who(channel: int, user: int, number: int) -> dict[str, str]:
    return {"channel_id": f"C{channel:05d}", "user_id": f"U{user:05d}", "trigger_id": f"{number}.{user}.mixed"}


# --- CPU of the server and of everything else ---------------------------------------


def _process_cpu() -> dict[int, tuple[str, float]]:
    """Every process's name and CPU seconds so far (user + system), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        found[int(entry.name)] = (head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / ticks)
    return found


async def _cpu_over(target: Target, window: tuple[float, float]) -> tuple[float, list[tuple[str, float]]]:
    """The target's CPU seconds over the window, and the other processes' (by name, the busiest first)."""
    await asyncio.sleep(max(0.0, window[0] - time.time()))
    before_target, before = target.cpu_seconds(), _process_cpu()
    await asyncio.sleep(max(0.0, window[1] - time.time()))
    after_target, after = target.cpu_seconds(), _process_cpu()
    others: Counter[str] = Counter()
    for pid, (name, seconds) in after.items():
        if pid in (target.process.pid, os.getpid()):
            continue
        spent = seconds - before.get(pid, (name, 0.0))[1]
        if spent > 0:
            others[name] += spent
    return after_target - before_target, [(name, seconds) for name, seconds in others.most_common(6)]


# --- the report ------------------------------------------------------------------------


def summarize(run: Run) -> dict[str, dict[str, float | int | None]]:
    """Per kind and overall: acks p50/p99, replies/s, errors, over the measurement window."""
    start, end = run.window
    measured = [s for s in run.samples if start <= s.sent < end]
    figures = {}
    for kind in (*KINDS, "all"):
        mine = [s for s in measured if kind in ("all", s.kind)]
        acks = [(s.acked - s.sent) * 1000 for s in mine if s.acked is not None]
        replies = [s for s in mine if s.error is None and s.replied is not None]
        figures[kind] = {
            "sent": len(mine),
            "ack_p50": percentile(acks, 0.50),
            "ack_p99": percentile(acks, 0.99),
            "ack_max": max(acks) if acks else None,
            "over_3s": sum(1 for s in mine if s.error == "no ack within 3 s"),
            "replies_per_s": len(replies) / (end - start),
            "e2e_p99": percentile([(s.replied - s.sent) * 1000 for s in replies], 0.99),
            "errors": sum(1 for s in mine if s.error is not None),
        }
    return figures


def markdown(args: argparse.Namespace, run: Run, load_before: tuple[float, ...]) -> str:
    """The report: one row per kind, then the process figures, what else ran, the machine and the command."""
    figures = summarize(run)
    replies = sum(1 for s in run.samples if run.window[0] <= s.sent < run.window[1] and s.error is None and s.replied)
    lines = [
        f"### Mixed traffic: {args.rate:g} deliveries/s, model latency {args.model_latency:g} s, "
        f"{args.duration:g} s measured, {args.database}{', quotas on every channel' if args.quota else ''}",
        "",
        "| kind | sent | ack p50 / p99 / max (ms) | acks over 3 s | replies/s | end-to-end p99 (ms) | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in (*KINDS, "all"):
        f = figures[kind]
        lines.append(
            f"| {kind} | {f['sent']} | {number(f['ack_p50'], 1)} / {number(f['ack_p99'], 1)} / {number(f['ack_max'], 0)} "
            f"| {f['over_3s']} | {number(f['replies_per_s'], 1)} | {number(f['e2e_p99'], 0)} | {f['errors']} |"
        )
    errors = Counter(s.error for s in run.samples if s.error is not None and run.window[0] <= s.sent < run.window[1])
    cpu_ms = run.cpu_seconds * 1000 / replies if replies else None
    ok = figures["all"]["ack_p99"] is not None and figures["all"]["ack_p99"] <= TARGET_ACK_P99_MS
    lines += [
        "",
        f"Frugal: {number(cpu_ms, 2)} CPU ms per reply, peak RSS {number(run.peak_rss_mb, 0)} MB. "
        f"Target ack p99 ≤ {TARGET_ACK_P99_MS} ms over all kinds: {'met' if ok and not errors else 'MISSED'}.",
    ]
    if errors or run.late:
        lines.append(
            "Errors: "
            + ", ".join(f"{k}: {v}" for k, v in errors.items())
            + (f"; replies after their delivery gave up: {run.late}" if run.late else "")
        )
    others = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.others) or "nothing measurable"
    lines += [
        f"Other CPU use over the {args.duration:g} s window (the fakes and the database included): {others}.",
        machine(load_before),
        "",
        f"Command: `python bench/mixed.py --rate {args.rate:g} --model-latency {args.model_latency:g} "
        f"--duration {args.duration:g} --warmup {args.warmup:g} --database {args.database}{' --quota' if args.quota else ''}`",
        "",
    ]
    return "\n".join(lines)


async def _set_default_quotas(url: str) -> None:
    """A workspace default on every channel, never reached: each model call reserves and settles under a limit."""
    from bot.config import normalize_database_url
    from bot.infra.db.engine import make_engine
    from bot.infra.db.migrate import upgrade
    from bot.infra.db.quota_store import SqlQuotaStore
    from bot.ports.quota import Metric, Period
    from bot.ports.quota_store import LimitRecord, Scope
    from bot.services.quota_spec import period_starts

    url = normalize_database_url(url)
    await upgrade(url)
    engine = make_engine(url)
    now = datetime.now(timezone.utc)
    try:
        store = SqlQuotaStore(engine)
        for metric, amount in ((Metric.REQUESTS, Decimal(1_000_000)), (Metric.USD, Decimal(1_000))):
            limit = LimitRecord(Scope.DEFAULT, "", metric, Period.MONTH, amount)
            await store.set_limit("T0001", limit, set_by="UBENCH", starts=period_starts(now, ZoneInfo("UTC")), now=now)
    finally:
        await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries sent a second, whatever the answers")
    parser.add_argument("--model-latency", type=float, default=1.0, help="seconds the fake OpenAI takes per answer")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--reply-timeout", type=float, default=30.0, help="seconds to wait for one reply")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES)
    parser.add_argument(
        "--quota",
        action="store_true",
        help="set a workspace default quota (requests and USD a month, never reached) before the run",
    )
    parser.add_argument("--output", type=Path, default=None, help="where the markdown report is written")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.model_latency < 0 or args.warmup < 0:
        parser.error("--rate and --duration must be > 0, --model-latency and --warmup ≥ 0")
    args.output = args.output or RESULTS / f"mixed-{args.database}.md"
    return args


async def _benchmark(args: argparse.Namespace, workdir: Path, openai_url: str, slack: SlackProcess) -> Run:
    env = slack_env(slack.api_url, openai_url)
    async with database(args.database, workdir, args.postgres_url) as url:
        if args.quota:
            await _set_default_quotas(url)
        async with frugal_server(env | {"DATABASE_URL": url}, workdir, args.output.parent) as target:
            return await drive(target, args.rate, args.warmup, args.duration, args.reply_timeout, slack)


def main(argv: list[str] | None = None) -> int:
    """Start the fakes and Frugal, drive the mix, print and save the report; everything started is stopped."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    load_before = os.getloadavg()
    openai = start_counting_openai(args.model_latency)
    try:
        slack = start_slack()
    except BaseException:
        openai.stop()
        raise
    try:
        with tempfile.TemporaryDirectory(prefix="frugal-mixed-") as tmp:
            run = asyncio.run(_benchmark(args, Path(tmp), openai.url, slack))
    except KeyboardInterrupt:
        print("interrupted: every process the benchmark started is stopped", file=sys.stderr)
        return 130
    finally:
        slack.stop()
        openai.stop()
    report = markdown(args, run, load_before)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    print(f"(written to {args.output})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
