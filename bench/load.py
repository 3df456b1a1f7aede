"""Load benchmark: Frugal's `frugal run` next to a sync Bolt app, under signed /rewrite slash commands.

What it measures, for each server: completed replies per second (a reply is the response_url POST
arriving at the fake Slack, matched to its request and checked to be the rewrite), acknowledgement
latency p50/p99 (the HTTP answer to the slash command), end-to-end latency p50/p99 (command sent →
reply at the fake Slack), CPU milliseconds per reply of the server process (/proc/<pid>/stat), its
peak RSS (VmHWM) and the errors. Two kinds of load, each run on its own:

- open loop (--rate N): N commands a second on a fixed schedule, whatever the answers, as Slack's many
  independent users send them; at model latency L about N x L commands are in flight (measured);
- closed loop (--concurrency N): N virtual users, each sending a command, waiting for its reply and
  sending the next, so at most N ÷ L replies per second are possible (the "ceiling" row).

Without either, both run: 210 commands/s and 200 users. The first --warmup seconds are not measured.

The fake OpenAI (every answer delayed by --model-latency) and the fake Slack run in their own
processes, the servers under test in theirs, so only the server's own CPU is counted. The baseline
is bench/baseline_sync_app.py: a sync Bolt `App` with a lazy listener on Bolt's default thread pool,
the sync OpenAI client, `app.start()`.

Run from the repository root, with the virtualenv active:

    python bench/load.py [--rate 210] [--concurrency 200] [--model-latency 1.0] [--duration 20] [--database sqlite|postgres]

It prints a markdown table and writes it to bench/results/load.md (or --output), with the servers'
logs beside it. --database postgres creates and drops a throwaway database on --postgres-url
(default: $TEST_DATABASE_URL, else the local server).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import signal
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_driver import LoadPlan, LoadResult, ReplyInbox, drive  # noqa: E402
from bench.load_fakes import FakeProcesses, start_fakes  # noqa: E402
from bench.load_targets import REPO, baseline_server, database, frugal_server, slack_env  # noqa: E402

RESULTS = REPO / "bench" / "results" / "load.md"
PACKAGES = ("slack_bolt", "slack_sdk", "openai", "aiohttp", "SQLAlchemy", "asyncpg")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_REPLIES_PER_S = 200
DEFAULT_USERS = 200
# Above the target, so "≥ 200 replies/s" is shown by keeping up with more, not by matching it exactly.
DEFAULT_RATE = 210
TARGET_ACK_P99_MS = 100
# An open loop is kept up with when at least this share of the offered rate is answered (the window's
# edges cost a little), and the commands in flight stay within this multiple of rate × model latency.
KEEP_UP_SHARE = 0.95
KEEP_UP_IN_FLIGHT = 1.5
TARGET_RSS_MB = 150
SERVERS = ("frugal", "baseline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrency",
        type=_levels,
        default=[],
        help="closed loop: virtual users, each with one command in flight; a list (50,200) runs each in turn",
    )
    parser.add_argument(
        "--rate",
        type=_levels,
        default=[],
        help="open loop: commands sent a second, whatever the answers; a list (100,220) runs each in turn",
    )
    parser.add_argument("--model-latency", type=float, default=1.0, help="seconds the fake OpenAI takes per answer")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--reply-timeout", type=float, default=30.0, help="seconds to wait for one reply")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated: frugal,baseline")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the markdown report is written")
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.concurrency and not args.rate:
        args.rate, args.concurrency = [DEFAULT_RATE], [DEFAULT_USERS]
    if unknown := set(args.servers) - set(SERVERS):
        parser.error(f"--servers: unknown {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    if args.duration <= 0 or args.model_latency < 0 or args.warmup < 0:
        parser.error("--duration must be > 0, --model-latency and --warmup ≥ 0")
    return args


def _levels(value: str) -> list[int]:
    try:
        levels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {value!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("every level must be ≥ 1")
    return levels


async def run_benchmark(
    args: argparse.Namespace, fakes: FakeProcesses, workdir: Path
) -> dict[LoadPlan, dict[str, LoadResult]]:
    """Load each chosen server at each level, against the same fakes; a fresh process (and database) each time."""
    inbox = ReplyInbox(fakes.replies)
    env = slack_env(fakes.slack_api_url, fakes.openai_url)
    results: dict[LoadPlan, dict[str, LoadResult]] = {}
    plans = [LoadPlan(users, args.warmup, args.duration, args.reply_timeout) for users in args.concurrency]
    plans += [LoadPlan(0, args.warmup, args.duration, args.reply_timeout, rate=rate) for rate in args.rate]
    for plan in plans:
        level = results.setdefault(plan, {})
        if "frugal" in args.servers:
            async with database(args.database, workdir, args.postgres_url) as url:
                async with frugal_server(env | {"DATABASE_URL": url}, workdir, args.output.parent) as target:
                    level["frugal"] = await drive(target, plan, inbox, fakes.response_url)
        if "baseline" in args.servers:
            async with baseline_server(env, workdir, args.output.parent) as target:
                level["baseline"] = await drive(target, plan, inbox, fakes.response_url)
    return results


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1]


def summarize(result: LoadResult) -> dict[str, float | int | None]:
    """The figures of one run, over its measurement window."""
    start, end = result.window
    in_window = [s for s in result.samples if start <= s.sent < end]
    replies = [s for s in result.samples if s.error is None and s.replied is not None and start <= s.replied < end]
    acks = [(s.acked - s.sent) * 1000 for s in in_window if s.acked is not None]
    e2e = [(s.replied - s.sent) * 1000 for s in in_window if s.error is None and s.replied is not None]
    return {
        "replies_per_s": len(replies) / (end - start),
        "ack_p50": percentile(acks, 0.50),
        "ack_p99": percentile(acks, 0.99),
        "e2e_p50": percentile(e2e, 0.50),
        "e2e_p99": percentile(e2e, 0.99),
        "cpu_ms": result.cpu_seconds * 1000 / len(replies) if replies else None,
        "rss_mb": result.peak_rss_mb,
        "sent": len(result.samples),
        "in_flight": sum(result.in_flight) / len(result.in_flight) if result.in_flight else None,
        "errors": sum(result.errors.values()) + result.duplicate_replies + result.late_replies,
    }


def markdown(
    args: argparse.Namespace, results: dict[LoadPlan, dict[str, LoadResult]], load_before: tuple[float, ...]
) -> str:
    """The report: a table per load level, then the machine and the command."""
    lines = [table(args, plan, level) for plan, level in results.items()]
    lines += [machine(load_before), "", f"Command: `python bench/load.py {command_line(args)}`", ""]
    return "\n".join(lines)


def table(args: argparse.Namespace, plan: LoadPlan, results: dict[str, LoadResult]) -> str:
    """One load level: the figures of each server, the errors, and which targets Frugal met."""
    figures = {name: summarize(result) for name, result in results.items()}
    names = [n for n in SERVERS if n in figures]
    titles = {"frugal": "Frugal (`frugal run`)", "baseline": "baseline (sync Bolt `App`, lazy listener)"}
    if plan.rate is None:
        ceiling = plan.concurrency / args.model_latency if args.model_latency else float("inf")
        heading = f"closed loop, {plan.concurrency} concurrent users"
        level_row = ("ceiling of the closed loop (users ÷ latency)", lambda f: number(ceiling, 0))
    else:
        ceiling = plan.rate
        heading = f"open loop, {plan.rate:g} commands/s"
        level_row = ("commands in flight (mean over the window)", lambda f: number(f["in_flight"], 0))

    def row(label: str, cell, target: str = "") -> str:
        return f"| {label} | " + " | ".join(cell(figures[n]) for n in names) + f" | {target} |"

    lines = [
        f"### Load: {heading}, model latency {args.model_latency:g} s, {args.duration:g} s measured, {args.database}",
        "",
        "| | " + " | ".join(titles[n] for n in names) + " | target (Frugal) |",
        "|---|" + "---|" * len(names) + "---|",
        row("completed replies/s", lambda f: number(f["replies_per_s"], 1), replies_target(plan.rate)),
        row(
            *level_row,
            "" if plan.rate is None else f"≤ {number(KEEP_UP_IN_FLIGHT * plan.rate * args.model_latency, 0)}",
        ),
        row(
            "ack latency p50 / p99 (ms)",
            lambda f: f"{number(f['ack_p50'], 1)} / {number(f['ack_p99'], 1)}",
            f"p99 ≤ {TARGET_ACK_P99_MS}",
        ),
        row("end-to-end p50 / p99 (ms)", lambda f: f"{number(f['e2e_p50'], 0)} / {number(f['e2e_p99'], 0)}"),
        row("CPU ms per reply", lambda f: number(f["cpu_ms"], 2)),
        row("peak RSS (MB)", lambda f: number(f["rss_mb"], 0), f"≤ {TARGET_RSS_MB}"),
        row("errors / commands sent", lambda f: f"{f['errors']} / {f['sent']}", "0"),
        "",
    ]
    for name in names:
        result = results[name]
        if result.errors or result.duplicate_replies or result.late_replies:
            breakdown = dict(result.errors) | {
                "duplicate replies": result.duplicate_replies,
                "replies after their request gave up": result.late_replies,
            }
            lines.append(f"Errors, {name}: " + ", ".join(f"{k}: {v}" for k, v in breakdown.items() if v))
    if "frugal" in figures:
        lines.append(verdict(figures["frugal"], ceiling, plan.rate, args.model_latency))
    return "\n".join(lines) + "\n"


def replies_target(rate: float | None) -> str:
    """The replies/s target: an open loop must keep up with what it offers, a closed loop reach the overall target."""
    if rate is None:
        return f"≥ {TARGET_REPLIES_PER_S}"
    return f"keeps up: ≥ {KEEP_UP_SHARE * min(rate, TARGET_REPLIES_PER_S):g}"


def verdict(
    frugal: dict[str, float | int | None], ceiling: float, rate: float | None = None, latency: float = 1.0
) -> str:
    """One line: which targets Frugal met (replies/s only where the load offered reaches it)."""
    checks = [
        ("ack p99", frugal["ack_p99"] is not None and frugal["ack_p99"] <= TARGET_ACK_P99_MS),
        ("RSS", frugal["rss_mb"] is not None and frugal["rss_mb"] <= TARGET_RSS_MB),
        ("no errors", frugal["errors"] == 0),
    ]
    if rate is not None:
        # Keeping up: about as many replies as commands offered, and no queue growing behind them.
        kept_up = frugal["replies_per_s"] >= KEEP_UP_SHARE * min(rate, TARGET_REPLIES_PER_S) and (
            frugal["in_flight"] is not None and frugal["in_flight"] <= KEEP_UP_IN_FLIGHT * rate * latency
        )
        checks.insert(0, ("keeps up", kept_up))
    elif ceiling > TARGET_REPLIES_PER_S:
        checks.insert(0, ("replies/s", frugal["replies_per_s"] >= TARGET_REPLIES_PER_S))
    return "Frugal targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks) + "."


def machine(load_before: tuple[float, ...]) -> str:
    """The machine and the software the figures were taken on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    load = " ".join(f"{x:.2f}" for x in load_before)
    return (
        f"Machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu}; Python {platform.python_version()}; "
        f"{versions}. Load average before the run: {load} (other work on the machine shares the CPUs)."
    )


def command_line(args: argparse.Namespace) -> str:
    """The options of this run, to rerun it."""
    levels = (f"--concurrency {','.join(map(str, args.concurrency))} " if args.concurrency else "") + (
        f"--rate {','.join(map(str, args.rate))} " if args.rate else ""
    )
    return f"{levels}--model-latency {args.model_latency:g} --duration {args.duration:g} --warmup {args.warmup:g} --database {args.database}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def number(value: float | int | None, digits: int) -> str:
    """A figure with thousands separators, or — for none."""
    return "—" if value is None else f"{value:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    """Start the fakes, load each server, print and save the report; everything started is stopped."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process this started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    load_before = os.getloadavg()
    fakes = start_fakes(args.model_latency)
    try:
        with tempfile.TemporaryDirectory(prefix="frugal-load-") as tmp:
            started = time.monotonic()
            results = asyncio.run(run_benchmark(args, fakes, Path(tmp)))
    except KeyboardInterrupt:
        print("interrupted: every process the benchmark started is stopped", file=sys.stderr)
        return 130
    finally:
        fakes.stop()
    report = markdown(args, results, load_before)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    print(f"(written to {args.output}; the run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
