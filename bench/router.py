"""The router's overhead over a bare AsyncOpenAI call, and answer times with the primary down; prints markdown.

Both sides call the same local fake OpenAI server (tests/fakes/openai_server.py, real HTTP on
127.0.0.1, no added latency), sequentially, one request at a time, taking turns call by call (each
side leading in turn) so that drift in machine load hits every side alike:

- bare: `AsyncOpenAI(max_retries=0).chat.completions.create(...)`, nothing else, on the SDK's
  aiohttp transport (`openai.DefaultAioHttpClient`) — the baseline of the overhead figures; the
  library's default httpx transport is shown too, and Frugal's adapter alone (its SDK call and the
  reading of the answer), for reference only;
- router, no-op ledger: `ModelRouter.complete` with a ledger that drops its entries — the
  router's own work (chain, health board, request mapping, error classification, pricing,
  energy, fallback note);
- router, SQLite ledger: the same with the real `SqlLedger` and `SqlModelStatusStore` on a
  migrated temp-file SQLite database (WAL), i.e. one INSERT + COMMIT per call, as in production;
- router, PostgreSQL ledger (with --postgres, or when TEST_DATABASE_URL is set): the same on a
  throwaway migrated database next to that server's, dropped afterwards.

Then the primary (gpt-6-luna) answers HTTP 500 to everything, with the production tuning:
- before its cool-down: a fresh router per request (no history), so each request retries the
  primary once after the 250 ms backoff, then answers from gpt-5.6-luna;
- after its cool-down: one router that has seen 3 failures, so the primary is skipped.
Figures are milliseconds per request.

    python bench/router.py                  # 3,000 calls per side
    python bench/router.py --calls 5000 --down 20
    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/router.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import AsyncOpenAI, DefaultAioHttpClient  # noqa: E402

from bench.databases import throwaway_postgres  # noqa: E402
from bot.catalog import Catalog  # noqa: E402
from bot.config import normalize_database_url  # noqa: E402
from bot.infra.db.engine import make_engine, make_sessionmaker  # noqa: E402
from bot.infra.db.ledger import SqlLedger  # noqa: E402
from bot.infra.db.migrate import upgrade  # noqa: E402
from bot.infra.db.model_status import SqlModelStatusStore  # noqa: E402
from bot.infra.openai_chat import OpenAIChatModel  # noqa: E402
from bot.ports.chat import ChatRequest  # noqa: E402
from bot.ports.completion import CallContext, CompletionRequest  # noqa: E402
from bot.ports.ledger import LedgerEntry  # noqa: E402
from bot.router.router import ModelRouter  # noqa: E402
from tests.fakes.openai_server import Fail, FakeOpenAI  # noqa: E402

CHAIN = ("gpt-6-luna", "gpt-5.6-luna")  # today's reasoning models, as the default chain answers on them
MESSAGES = (
    {"role": "system", "content": "Rewrite the message so it is clear."},
    {"role": "user", "content": "hello there"},
)
CTX = CallContext(team_id="T1", channel_id="C1", user_id="U1", request_key="bench", task="rewrite")
REQUEST = CompletionRequest(messages=MESSAGES, max_tokens=64)
TARGET_MS, TARGET_SHARE = 2.0, 0.05
BARE = "bare AsyncOpenAI (`chat.completions.create` on the SDK's aiohttp transport)"
BARE_HTTPX = "bare AsyncOpenAI (httpx, the library's default; reference only)"
ADAPTER = "Frugal's adapter alone (`OpenAIChatModel.complete` on the same SDK client; reference only)"
REFERENCES = (BARE, BARE_HTTPX, ADAPTER)


class NoLedger:
    """A ledger that keeps nothing: isolates the router's own cost."""

    async def record(self, entry: LedgerEntry) -> None:
        """Drop the entry."""


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def overhead(api_url: str, calls: int, databases: dict[str, str]) -> dict[str, list[float]]:
    """Per-call milliseconds of each side, the sides taking turns call by call after a warm-up."""
    catalog = Catalog.load()
    async with AsyncExitStack() as stack:
        sides: dict[str, Callable[[], Awaitable[object]]] = {}
        for name, http_client in ((BARE, DefaultAioHttpClient(timeout=30)), (BARE_HTTPX, None)):
            client = AsyncOpenAI(
                api_key="sk-bench", base_url=api_url, max_retries=0, timeout=30, http_client=http_client
            )
            stack.push_async_callback(client.close)
            sides[name] = lambda client=client: client.chat.completions.create(
                model=CHAIN[0], messages=list(MESSAGES), max_completion_tokens=64, reasoning_effort="none"
            )
        adapter = OpenAIChatModel(api_key="sk-bench", base_url=api_url, timeout=30)
        stack.push_async_callback(adapter.close)
        chat_request = ChatRequest(model=CHAIN[0], messages=MESSAGES, max_tokens=64, shape=catalog.get(CHAIN[0]).call)
        sides[ADAPTER] = lambda: adapter.complete(chat_request)
        for name, db_url in {"no-op": None, **databases}.items():
            chat = OpenAIChatModel(api_key="sk-bench", base_url=api_url, timeout=30)
            stack.push_async_callback(chat.close)
            if db_url is None:
                router = ModelRouter(chat, catalog, NoLedger(), CHAIN, baseline_model=catalog.baseline_model)
            else:
                engine = make_engine(db_url)
                stack.push_async_callback(engine.dispose)
                sessions = make_sessionmaker(engine)
                router = ModelRouter(
                    chat,
                    catalog,
                    SqlLedger(sessions),
                    CHAIN,
                    baseline_model=catalog.baseline_model,
                    status_store=SqlModelStatusStore(sessions),
                )
            sides[f"router, {name} ledger"] = lambda router=router: router.complete(CTX, REQUEST)
        samples: dict[str, list[float]] = {name: [] for name in sides}
        for call in sides.values():  # warm-up: connections, imports, database files
            for _ in range(50):
                await call()
        order = list(sides.items())
        for turn in range(calls):
            # Each side leads in turn, so going first (or last) in a round favours none.
            for name, call in order[turn % len(order) :] + order[: turn % len(order)]:
                samples[name].append(await _timed(call))
    return samples


async def primary_down(fake: FakeOpenAI, requests: int) -> tuple[list[float], list[float]]:
    """Milliseconds to answer with the primary failing: fresh routers (before cool-down), then a cooled one."""
    fake.set_behaviour(CHAIN[0], Fail.server_error())
    chat = OpenAIChatModel(api_key="sk-bench", base_url=fake.api_url, timeout=30)
    catalog = Catalog.load()
    try:
        before = []
        for _ in range(requests):
            fresh = ModelRouter(chat, catalog, NoLedger(), CHAIN, baseline_model=catalog.baseline_model)
            before.append(await _timed(lambda fresh=fresh: fresh.complete(CTX, REQUEST)))
        cooled = ModelRouter(chat, catalog, NoLedger(), CHAIN, baseline_model=catalog.baseline_model)
        await cooled.complete(CTX, REQUEST)  # two failures
        await cooled.complete(CTX, REQUEST)  # the third: cooled down
        assert (await cooled.model_health())[0].state == "cooling down"
        after = [await _timed(lambda: cooled.complete(CTX, REQUEST)) for _ in range(requests * 10)]
    finally:
        fake.set_behaviour(CHAIN[0], None)
        await chat.close()
    return before, after


def render(samples: dict[str, list[float]], before: list[float], after: list[float]) -> str:
    """The markdown section: overhead table, verdict, and the primary-down table."""
    bare = statistics.median(samples[BARE])
    bare_p99 = _percentile(samples[BARE], 0.99)
    lines = [
        "| path | calls | median ms | p99 ms | median overhead vs bare | p99 overhead |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name, values in samples.items():
        median, p99 = statistics.median(values), _percentile(values, 0.99)
        if name in REFERENCES:
            lines.append(f"| {name} | {len(values):,} | {median:.2f} | {p99:.2f} | — | — |")
            continue
        extra = median - bare
        lines.append(
            f"| {name} | {len(values):,} | {median:.2f} | {p99:.2f} | "
            f"{extra:+.2f} ms ({extra / bare:+.0%}) | {p99 - bare_p99:+.2f} ms |"
        )
        met = extra <= TARGET_MS or extra <= TARGET_SHARE * bare
        verdicts.append(f"{name}: {'met' if met else 'NOT met'} ({extra:+.2f} ms, {extra / bare:+.1%})")
    lines += ["", "Target: median overhead within 5% or 2 ms. " + "; ".join(verdicts) + ".", ""]
    lines += [
        "| primary (gpt-6-luna) answering HTTP 500 | requests | median ms | p99 ms |",
        "|---|---|---|---|",
        f"| before its cool-down (1 retry after 250 ms backoff, then gpt-5.6-luna) | {len(before)} | "
        f"{statistics.median(before):.1f} | {_percentile(before, 0.99):.1f} |",
        f"| after its cool-down (skipped, gpt-5.6-luna answers) | {len(after)} | "
        f"{statistics.median(after):.2f} | {_percentile(after, 0.99):.2f} |",
    ]
    return "\n".join(lines)


async def run(calls: int, down: int, postgres: str | None) -> str:
    """Start the fake and migrated throwaway databases, measure, and render."""
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory() as tmp:
        databases = {"SQLite": normalize_database_url(f"sqlite:///{Path(tmp) / 'bench.db'}")}
        async with AsyncExitStack() as stack:
            if postgres:
                databases["PostgreSQL"] = await stack.enter_async_context(throwaway_postgres(postgres))
            for url in databases.values():
                await upgrade(url)
            samples = await overhead(fake.api_url, calls, databases)
        before, after = await primary_down(fake, down)
    return render(samples, before, after)


def main() -> None:
    """Parse the arguments, run the benchmark, print the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per side (default 3000)")
    parser.add_argument("--down", type=int, default=20, help="requests with the primary down, before its cool-down")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="a PostgreSQL server URL for the PostgreSQL-ledger side (default: $TEST_DATABASE_URL; none: skipped)",
    )
    args = parser.parse_args()
    print(asyncio.run(run(args.calls, args.down, args.postgres)))


if __name__ == "__main__":
    main()
