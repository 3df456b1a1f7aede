"""Prometheus metrics of one process: its model calls, read off the ledger, and the quotas that remain."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.ports.completion import CallContext, Completer, Completion, CompletionRequest
from bot.ports.ledger import LedgerEntry, LedgerRepository
from bot.ports.quota import QuotaReader

log = logging.getLogger(__name__)

# Model calls take from a few tens of milliseconds (a cached classify) to the client's timeout.
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
# Label values come from the chain, the task names and the endpoint's error codes; a gateway may
# send any code, so each value is cut short to keep the series few and small.
LABEL_CHARS = 40
# How many channels' quotas one process reports, and how many requests it follows at once to
# tell a fallback from a retry; the oldest are forgotten first.
MAX_CHANNELS = 500
MAX_OPEN_REQUESTS = 10_000
QUOTA_READ_TIMEOUT_S = 5.0
TOKEN_KINDS = ("prompt", "cached", "completion", "reasoning", "cache_write")


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def label(value: str | None) -> str:
    """A label value of bounded length ("" for none)."""
    return (value or "")[:LABEL_CHARS]


@dataclass(frozen=True)
class _Failed:
    """A request's latest failed attempt, not yet known to be a retry or a fallback."""

    task: str
    model: str
    reason: str


class Metrics:
    """One process's metrics, on a registry of its own (never prometheus_client's global one).

    The counters and the histogram count only what this process did, so a Prometheus sum() over
    replicas adds up to the ledger (every replica writes its own rows). The quota gauge is not
    this process's: see refresh_quotas.
    """

    def __init__(self, quotas: QuotaReader | None = None, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._quotas = quotas
        self._clock = clock
        self._requests = Counter(
            "frugal_model_requests",
            "Model call attempts made by this process (one per ledger row), "
            "by task, model of the chain and outcome (ok, error, refused).",
            ("task", "model", "outcome"),
            registry=self.registry,
        )
        self._tokens = Counter(
            "frugal_model_tokens",
            "Tokens of this process's model calls, by task, model and kind "
            "(prompt; cached and cache_write are part of prompt; completion; reasoning is part of completion).",
            ("task", "model", "kind"),
            registry=self.registry,
        )
        self._cost = Counter(
            "frugal_model_cost_usd",
            "What this process's model calls cost in USD, by task and model "
            "(a call whose price is unknown adds nothing).",
            ("task", "model"),
            registry=self.registry,
        )
        self._fallbacks = Counter(
            "frugal_fallbacks",
            "Failed attempts after which a request went on to another model or failed, "
            "by task, the model that failed and the reason (its error code); retries on the same model are not counted.",
            ("task", "model", "reason"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "frugal_model_call_latency_seconds",
            "How long this process's model calls took, by task, model and outcome.",
            ("task", "model", "outcome"),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._quota_remaining = Gauge(
            "frugal_quota_remaining",
            "What remains of each limit applying to a channel this process has served "
            "since it started (requests, tokens or USD), read from the shared database at scrape time: every "
            "replica reports the same value, so aggregate with max(), never sum().",
            ("team", "channel", "scope", "metric", "period"),
            registry=self.registry,
        )
        self._open: OrderedDict[str, _Failed] = OrderedDict()
        self._channels: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._refresh = asyncio.Lock()

    @property
    def content_type(self) -> str:
        """The Content-Type of the text exposition format."""
        # The classic text format, which every Prometheus version reads; all names here are legacy-valid,
        # so the body is the same in both versions (prometheus_client answers so too without an Accept header).
        return CONTENT_TYPE_PLAIN_0_0_4

    def ledger(self, inner: LedgerRepository) -> LedgerRepository:
        """A ledger that counts each entry here, then writes it to `inner`."""
        return _MeteredLedger(self, inner)

    def completer(self, inner: Completer) -> Completer:
        """A completer that tells these metrics when each request is over (so a last failure counts as a fallback)."""
        return _MeteredCompleter(self, inner)

    def observe(self, entry: LedgerEntry) -> None:
        """Count one model call attempt."""
        task, model = label(entry.task), label(entry.requested_model)
        self._requests.labels(task, model, label(entry.outcome)).inc()
        self._latency.labels(task, model, label(entry.outcome)).observe(max(entry.latency_ms, 0.0) / 1000)
        if entry.outcome != "error":
            counts = (
                entry.prompt_tokens,
                entry.cached_tokens,
                entry.completion_tokens,
                entry.reasoning_tokens,
                entry.cache_write_tokens,
            )
            for kind, count in zip(TOKEN_KINDS, counts, strict=True):
                self._tokens.labels(task, model, kind).inc(max(count, 0))
        if entry.cost_usd is not None and entry.cost_usd > 0:
            self._cost.labels(task, model).inc(float(entry.cost_usd))
        self._follow(entry, task, model)
        self._channels[(entry.team_id, entry.channel_id)] = None
        self._channels.move_to_end((entry.team_id, entry.channel_id))
        if len(self._channels) > MAX_CHANNELS:
            self._channels.popitem(last=False)

    def _follow(self, entry: LedgerEntry, task: str, model: str) -> None:
        """A failure is a fallback once the same request tries another model (or ends, see finished)."""
        before = self._open.pop(entry.request_key, None)
        if before is not None and before.model != model:
            self._fallbacks.labels(before.task, before.model, before.reason).inc()
        if entry.outcome == "error":
            self._open[entry.request_key] = _Failed(task, model, label(entry.error_code or "unknown"))
            if len(self._open) > MAX_OPEN_REQUESTS:
                self._open.popitem(last=False)

    def finished(self, request_key: str) -> None:
        """The request is over: a failure still open is the one it failed on."""
        failed = self._open.pop(request_key, None)
        if failed is not None:
            self._fallbacks.labels(failed.task, failed.model, failed.reason).inc()

    async def refresh_quotas(self) -> None:
        """Read what remains of the quotas of the channels this process served; drop them if the database fails.

        The counters behind a quota are rows shared by every replica, reserved and settled
        atomically across processes (bot/services/quota.py, bot/infra/db/quota_store.py): no
        replica owns a share of them that it could export for a sum() to add up. So each replica
        reports the one shared value, the same everywhere, and the HELP text says to use max().
        It is read when Prometheus scrapes, so it is never older than the scrape.
        """
        if self._quotas is None:
            return
        async with self._refresh:
            channels = list(self._channels)
            try:
                read = await asyncio.wait_for(self._read_quotas(channels), QUOTA_READ_TIMEOUT_S)
            # Whatever the database raised, the values are unknown now: showing old ones would mislead.
            except Exception as err:  # noqa: BLE001
                log.warning("metrics: could not read the quotas (%s)", type(err).__name__)
                read = {}
            self._quota_remaining.clear()
            for labels, remaining in read.items():
                self._quota_remaining.labels(*labels).set(remaining)

    async def _read_quotas(self, channels: list[tuple[str, str]]) -> dict[tuple[str, ...], float]:
        assert self._quotas is not None
        now = self._clock()
        read: dict[tuple[str, ...], float] = {}
        for team, channel in channels:
            for use in await self._quotas.channel_quotas(team, channel, now):
                key = (label(team), label(channel), use.scope, use.metric.value, use.period.value)
                read[key] = float(use.remaining)
        return read

    async def scrape(self) -> bytes:
        """The text exposition of every metric, quotas read afresh."""
        await self.refresh_quotas()
        return generate_latest(self.registry)


class _MeteredLedger:
    """LedgerRepository that counts each entry, then writes it to the wrapped ledger."""

    def __init__(self, metrics: Metrics, inner: LedgerRepository) -> None:
        self._metrics = metrics
        self._inner = inner

    async def record(self, entry: LedgerEntry) -> None:
        """Count the attempt, then append it to the ledger."""
        self._metrics.observe(entry)
        await self._inner.record(entry)


class _MeteredCompleter:
    """Completer that marks the end of each request for the fallback count."""

    def __init__(self, metrics: Metrics, inner: Completer) -> None:
        self._metrics = metrics
        self._inner = inner

    async def complete(self, ctx: CallContext, request: CompletionRequest) -> Completion:
        """Complete on the wrapped completer; whatever the outcome, the request is then over."""
        try:
            return await self._inner.complete(ctx, request)
        finally:
            self._metrics.finished(ctx.request_key)
