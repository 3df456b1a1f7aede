"""Two replicas on PostgreSQL under load: replies/s, ack latency, and whether quotas and once-only delivery hold exactly.

Two real `frugal run` processes share one throwaway PostgreSQL database (they start together, so the
migration lock is exercised too) and the local fakes: the fake Slack and a fake OpenAI that answers
after --model-latency seconds and reports every prompt it received. An admin sets the channel's quota
to --quota requests/day with a signed `/frugal quota set`; then --concurrency virtual users send
--deliveries distinct signed /rewrite commands in a closed loop, alternating between the replicas.
Every --duplicate-every-th delivery is posted to both replicas at the same instant (a load balancer
resending it), and every --retry-every-th is sent again after its reply, with X-Slack-Retry-Num, to
the other replica. Exact means: model calls at the fake == quota, one reply per delivery (quota
answers, the rest refused with the quota message), no prompt twice at the model, no second reply.

Run from the repository root, with the virtualenv active (PostgreSQL at --postgres-url, default
$TEST_DATABASE_URL, else the local server):

    python bench/replicas.py [--concurrency 200] [--model-latency 1.0] [--deliveries 1600] [--quota 1000]

It prints a markdown table and writes it to bench/results/replicas.md (or --output); the replicas'
logs go beside it. The whole run is bounded by --timeout; every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import CountingOpenAI, start_counting_openai  # noqa: E402
from bench.load import machine, number, percentile  # noqa: E402
from bench.load_driver import ACK_TIMEOUT_S, ReplyInbox  # noqa: E402
from bench.load_fakes import FakeProcesses, start_fakes  # noqa: E402
from bench.load_targets import REPO, SIGNING_SECRET, Target, database, frugal_server, slack_env  # noqa: E402
from tests.fakes.slack_signing import sign_request, slash_command  # noqa: E402

RESULTS = REPO / "bench" / "results" / "replicas.md"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN, CHANNEL = "UBENCHADMIN", "C0001"
REFUSAL = "has no room for this request"
RETRY_HEADERS = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
TARGET_ACK_P99_MS = 100
NO_ACK = "no ack within 3 s"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=200, help="virtual users, each with one delivery in flight")
    parser.add_argument("--model-latency", type=float, default=1.0, help="seconds the fake OpenAI takes per answer")
    parser.add_argument("--deliveries", type=int, default=1600, help="distinct /rewrite commands sent in all")
    parser.add_argument("--quota", type=int, default=1000, help="the channel's requests/day limit (< --deliveries)")
    parser.add_argument("--duplicate-every", type=int, default=4, help="every N-th delivery goes to both replicas")
    parser.add_argument("--retry-every", type=int, default=8, help="every N-th delivery is retried after its reply")
    parser.add_argument("--reply-timeout", type=float, default=30.0, help="seconds to wait for one reply")
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="latencies of deliveries sent in the first seconds (all users starting at once) are not "
        "counted; every delivery counts for exactness",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on the whole run, in seconds")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES)
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the markdown report is written")
    args = parser.parse_args(argv)
    if not 0 < args.quota < args.deliveries:
        parser.error("--quota must be > 0 and smaller than --deliveries, so some deliveries are refused")
    if min(args.concurrency, args.duplicate_every, args.retry_every) < 1 or args.model_latency < 0:
        parser.error("--concurrency, --duplicate-every and --retry-every must be ≥ 1, --model-latency ≥ 0")
    return args


@dataclass(frozen=True)
class Outcome:
    """One delivery: when it was sent, its ack latencies (ms, one per POST), when and how it was answered."""

    sent: float
    acks_ms: tuple[float, ...]
    replied: float | None
    kind: str  # answered, refused, or what went wrong


@dataclass
class Run:
    """Everything measured: the deliveries, the POSTs that failed, and what the fakes and the database saw."""

    outcomes: list[Outcome] = field(default_factory=list)
    failed_posts: Counter[str] = field(default_factory=Counter)
    second_replies: int = 0
    late_replies: int = 0
    prompts: list[str] = field(default_factory=list)
    ok_ledger_rows: int = 0
    counter_used: int = 0
    counter_held: int = 0
    posts: int = 0


class Driver:
    """The closed loop: each virtual user sends a delivery, waits for its one reply, and sends the next."""

    def __init__(
        self,
        args: argparse.Namespace,
        targets: list[Target],
        inbox: ReplyInbox,
        fakes: FakeProcesses,
        http: aiohttp.ClientSession,
    ) -> None:
        self.args, self.targets, self.inbox, self.fakes, self.http = args, targets, inbox, fakes, http
        self.run = Run()
        self._ids = itertools.count()

    async def drive(self) -> Run:
        """Send every delivery; return what happened."""
        await asyncio.gather(*(self._user(user) for user in range(self.args.concurrency)))
        return self.run

    async def _user(self, user: int) -> None:
        while (i := next(self._ids)) < self.args.deliveries:
            self.run.outcomes.append(await self._deliver(i, user))

    async def _deliver(self, i: int, user: int) -> Outcome:
        name = f"rep-{i}"
        marker = f"delivery {name}"
        body, content_type = slash_command(
            "/rewrite",
            f"please tidy up this sentence, {marker}",
            user_id=f"U{user:05d}",
            channel_id=CHANNEL,
            trigger_id=f"{i}.{user}.replicas",
            response_url=self.fakes.response_url(name),
        )
        first, other = self.targets[i % 2], self.targets[(i + 1) % 2]
        to = [first, other] if i % self.args.duplicate_every == 0 else [first]
        reply = self.inbox.expect(name)
        sent = time.time()
        try:
            acks = [a for a in await asyncio.gather(*(self._post(t, body, content_type) for t in to)) if a is not None]
            # A late ack is an error already counted; Slack still delivered the command, so its reply is awaited.
            try:
                arrival = await asyncio.wait_for(reply, self.args.reply_timeout)
            except TimeoutError:
                return Outcome(sent, tuple(acks), None, "no reply in time")
        finally:
            self.inbox.forget(name)
        if i % self.args.retry_every == 0:
            retry = await self._post(other, body, content_type, RETRY_HEADERS)
            acks += [retry] if retry is not None else []
        kind = (
            "answered"
            if arrival.text.startswith("[") and marker in arrival.text
            else ("refused" if REFUSAL in arrival.text else "reply is neither the rewrite nor the refusal")
        )
        return Outcome(sent, tuple(acks), arrival.at, kind)

    async def _post(
        self, target: Target, body: str, content_type: str, extra: dict[str, str] | None = None
    ) -> float | None:
        """POST one signed delivery; its ack latency in ms, or None (counted as a failed POST)."""
        headers = sign_request(SIGNING_SECRET, body) | {"Content-Type": content_type} | (extra or {})
        self.run.posts += 1
        started = time.perf_counter()
        try:
            async with self.http.post(
                target.url + "/slack/events",
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=ACK_TIMEOUT_S),
            ) as response:
                await response.read()
        except TimeoutError:
            self.run.failed_posts[NO_ACK] += 1
            return None
        except aiohttp.ClientError as err:
            self.run.failed_posts[f"ack failed: {type(err).__name__}"] += 1
            return None
        if response.status != 200:
            self.run.failed_posts[f"ack HTTP {response.status}"] += 1
            return None
        return (time.perf_counter() - started) * 1000


async def set_quota(http: aiohttp.ClientSession, target: Target, quota: int) -> None:
    """The admin's signed `/frugal quota set here N requests/day`; raises unless Frugal says it is done."""
    body, content_type = slash_command(
        "/frugal", f"quota set here {quota} requests/day", user_id=ADMIN, channel_id=CHANNEL
    )
    headers = sign_request(SIGNING_SECRET, body) | {"Content-Type": content_type}
    async with http.post(target.url + "/slack/events", data=body, headers=headers) as response:
        answer = await response.json(content_type=None)
    if not str(answer.get("text", "")).startswith("Done:"):
        raise RuntimeError(f"setting the quota failed: {answer}")


async def database_figures(url: str) -> tuple[int, int, int]:
    """Ok ledger rows, and the requests counted (used, still held) by the channel's quota counter."""
    conn = await asyncpg.connect(url)
    try:
        ok = await conn.fetchval("SELECT count(*) FROM usage_ledger WHERE outcome = 'ok'")
        used, held = await conn.fetchrow(
            "SELECT coalesce(sum(used), 0), coalesce(sum(reserved), 0) FROM quota_counters"
            " WHERE counted = $1 AND metric = 'requests'",
            CHANNEL,
        )
        return int(ok), int(used), int(held)
    finally:
        await conn.close()


async def run_benchmark(args: argparse.Namespace, fakes: FakeProcesses, openai: CountingOpenAI, workdir: Path) -> Run:
    """Start both replicas on one fresh database, set the quota, drive the load, then read the fakes and the database."""
    env = slack_env(fakes.slack_api_url, openai.url) | {"FRUGAL_ADMINS": ADMIN}
    inbox = ReplyInbox(fakes.replies)
    loop = asyncio.get_running_loop()
    async with database("postgres", workdir, args.postgres_url) as url:
        async with contextlib.AsyncExitStack() as replicas:
            targets = await asyncio.gather(
                *(
                    replicas.enter_async_context(
                        _replica(env | {"DATABASE_URL": url}, workdir, args.output.parent, name)
                    )
                    for name in ("a", "b")
                )
            )
            loop.add_reader(inbox.pipe.fileno(), inbox.drain_pipe)
            try:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                    await set_quota(http, targets[0], args.quota)
                    run = await Driver(args, list(targets), inbox, fakes, http).drive()
                # Long enough for a duplicate to have reached the model and come back.
                await asyncio.sleep(args.model_latency + 2.0)
                inbox.drain_pipe()
            finally:
                loop.remove_reader(inbox.pipe.fileno())
            run.second_replies, run.late_replies = inbox.duplicates, inbox.late
            run.prompts = openai.prompts()
            run.ok_ledger_rows, run.counter_used, run.counter_held = await database_figures(
                url.replace("postgresql+asyncpg", "postgresql")
            )
    return run


def _replica(env: dict[str, str], workdir: Path, logs: Path, name: str):
    """One `frugal run` in a directory of its own (its log is kept as replica-<name>/load-frugal.log)."""
    own = workdir / name
    own.mkdir()
    return frugal_server(env, own, logs / f"replica-{name}")


def summarize(args: argparse.Namespace, run: Run) -> dict[str, float | int | None]:
    """The figures of the run."""
    answered = [o for o in run.outcomes if o.kind == "answered"]
    replied = [o for o in run.outcomes if o.replied is not None]
    start = min((o.sent for o in run.outcomes), default=0.0)
    warm = [o for o in answered if o.sent >= start + getattr(args, "warmup", 0.0)]
    # An ack that never came within Slack's 3 s counts as 3 s (a lower bound), not as a missing sample.
    acks = [a for o in run.outcomes for a in o.acks_ms] + [ACK_TIMEOUT_S * 1000] * run.failed_posts[NO_ACK]
    e2e = [(o.replied - o.sent) * 1000 for o in answered if o.replied is not None]
    answered_until = max((o.replied for o in answered if o.replied is not None), default=start)
    replied_until = max((o.replied for o in replied if o.replied is not None), default=start)
    twice_asked = sum(n - 1 for n in Counter(run.prompts).values() if n > 1)
    return {
        "answered_per_s": len(answered) / (answered_until - start) if answered_until > start else None,
        "replies_per_s": len(replied) / (replied_until - start) if replied_until > start else None,
        "ack_p50": percentile(acks, 0.50),
        "ack_p99": percentile(acks, 0.99),
        # While the quota lasts each user waits a model call between commands; once it is spent, a refusal
        # comes back at once and the closed loop turns into a flood, which the row of all POSTs includes.
        "answered_ack_p50": percentile([a for o in warm for a in o.acks_ms], 0.50),
        "answered_ack_p99": percentile([a for o in warm for a in o.acks_ms], 0.99),
        "e2e_p50": percentile(e2e, 0.50),
        "e2e_p99": percentile(e2e, 0.99),
        "answered": len(answered),
        "refused": sum(o.kind == "refused" for o in run.outcomes),
        "model_calls": len(run.prompts),
        "twice_asked": twice_asked,
        "second_replies": run.second_replies,
        "errors": sum(o.kind not in ("answered", "refused") for o in run.outcomes)
        + sum(run.failed_posts.values())
        + run.late_replies,
        "duplicated": sum(1 for i in range(args.deliveries) if i % args.duplicate_every == 0),
        "retried": sum(1 for i in range(args.deliveries) if i % args.retry_every == 0),
    }


def exact(args: argparse.Namespace, run: Run) -> bool:
    """Whether quotas and once-only delivery held exactly, with no error."""
    f = summarize(args, run)
    return (
        f["model_calls"] == f["answered"] == run.ok_ledger_rows == run.counter_used == args.quota
        and f["refused"] == args.deliveries - args.quota
        and run.counter_held == f["twice_asked"] == f["second_replies"] == f["errors"] == 0
    )


def markdown(args: argparse.Namespace, run: Run, load_before: tuple[float, ...], took: float) -> str:
    """The report: the table, what went wrong if anything, the machine and the command."""
    f = summarize(args, run)
    quota, refusals = args.quota, args.deliveries - args.quota

    def check(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = [
        f"### Two replicas on PostgreSQL: {args.concurrency} concurrent, model latency {args.model_latency:g} s, "
        f"{args.deliveries} deliveries, quota {quota} requests/day",
        "",
        "| | measured | target | |",
        "|---|---|---|---|",
        f"| answered replies/s (both replicas, until the quota was used up) | {number(f['answered_per_s'], 1)} | | |",
        f"| all replies/s (answers and refusals) | {number(f['replies_per_s'], 1)} | | |",
        f"| ack latency p50 / p99 (ms) of the deliveries answered with a rewrite, after the first {args.warmup:g} s "
        f"| {number(f['answered_ack_p50'], 1)} / {number(f['answered_ack_p99'], 1)} | p99 ≤ {TARGET_ACK_P99_MS} "
        f"| {check(f['answered_ack_p99'] is not None and f['answered_ack_p99'] <= TARGET_ACK_P99_MS)} |",
        f"| ack latency p50 / p99 (ms) of all {run.posts} POSTs, with the refusals' flood (none within 3 s counted as 3 s) "
        f"| {number(f['ack_p50'], 1)} / {number(f['ack_p99'], 1)} | | |",
        f"| end-to-end p50 / p99 of answers (ms) | {number(f['e2e_p50'], 0)} / {number(f['e2e_p99'], 0)} | | |",
        f"| model calls at the fake OpenAI | {f['model_calls']} | = quota ({quota}) | {check(f['model_calls'] == quota)} |",
        f"| answered / refused with the quota message | {f['answered']} / {f['refused']} | {quota} / {refusals} "
        f"| {check((f['answered'], f['refused']) == (quota, refusals))} |",
        f"| ok ledger rows / quota counter used / still held | {run.ok_ledger_rows} / {run.counter_used} / "
        f"{run.counter_held} | {quota} / {quota} / 0 "
        f"| {check(run.ok_ledger_rows == run.counter_used == quota and run.counter_held == 0)} |",
        f"| deliveries posted to both replicas at once / retried later | {f['duplicated']} / {f['retried']} | | |",
        f"| prompts the model saw twice | {f['twice_asked']} | 0 | {check(f['twice_asked'] == 0)} |",
        f"| second replies to a delivery | {f['second_replies']} | 0 | {check(f['second_replies'] == 0)} |",
        f"| errors | {f['errors']} | 0 | {check(f['errors'] == 0)} |",
        "",
    ]
    problems = Counter(o.kind for o in run.outcomes if o.kind not in ("answered", "refused")) + run.failed_posts
    problems["replies after their request gave up waiting"] = run.late_replies
    problems = +problems  # drop the zero counts
    if problems:
        lines += ["Errors: " + ", ".join(f"{kind}: {n}" for kind, n in problems.items()), ""]
    lines += [
        machine(load_before) + f" The run took {took:.0f} s.",
        "",
        f"Command: `python bench/replicas.py --concurrency {args.concurrency} --model-latency {args.model_latency:g} "
        f"--deliveries {args.deliveries} --quota {args.quota} --duplicate-every {args.duplicate_every} "
        f"--retry-every {args.retry_every} --warmup {args.warmup:g}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start the fakes and both replicas, drive the load, print and save the report; everything started is stopped."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process this started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    load_before = os.getloadavg()
    started = time.monotonic()
    fakes = start_fakes(args.model_latency)  # the fake Slack (its fake OpenAI stays idle: ours counts prompts)
    try:
        openai = start_counting_openai(args.model_latency)
        try:
            with tempfile.TemporaryDirectory(prefix="frugal-replicas-") as tmp:
                run = asyncio.run(asyncio.wait_for(run_benchmark(args, fakes, openai, Path(tmp)), args.timeout))
        finally:
            openai.stop()
    except KeyboardInterrupt:
        print("interrupted: every process the benchmark started is stopped", file=sys.stderr)
        return 130
    except TimeoutError:
        print(
            f"the run did not finish within --timeout {args.timeout:g} s; every process it started is stopped",
            file=sys.stderr,
        )
        return 1
    finally:
        fakes.stop()
    report = markdown(args, run, load_before, time.monotonic() - started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    print(f"(written to {args.output})")
    return 0 if exact(args, run) else 1


if __name__ == "__main__":
    sys.exit(main())
