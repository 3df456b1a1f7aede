"""Model lifecycle: is each configured model offered by the endpoint, and when does it shut down?"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Protocol

from bot.catalog import Catalog, Price, UnknownModelError, price_sheet, price_source
from bot.config import ConfigError
from bot.ports.alerts import AdminAlerts
from bot.ports.chat import ModelCallError, ModelListUnavailable, RemoteModel
from bot.ports.model_status import ModelHealth, ModelHealthReader, RetiredModels, Retirement

log = logging.getLogger(__name__)

SHUTDOWN_WARNING_DAYS = 30
REFRESH_EVERY = timedelta(days=1)
LIST_TIMEOUT_S = 10.0


class ModelLister(Protocol):
    """The part of the ChatModel port the lifecycle needs."""

    async def list_models(self) -> list[RemoteModel]:
        """GET /v1/models; raise ModelListUnavailable when the endpoint cannot list."""
        ...


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ModelLifecycle:
    """What is known of one configured model."""

    model: str  # the canonical id the router uses
    configured_as: str  # as written in FRUGAL_MODELS
    in_catalog: bool
    listed: bool | None  # None: the endpoint could not say
    shutdown_date: date | None
    price: Price | None
    retired: Retirement | None = None  # set when the model no longer answers: skipped without a call
    replacement: str | None = None  # what OpenAI recommends in its place, where known
    price_source: str | None = None  # where the price comes from (genai-prices, the catalog file)
    energy_source: str | None = None  # the full source of its energy estimate; None: no estimate

    def days_left(self, today: date) -> int | None:
        """Days until the shutdown date (negative once past), or None when none is announced."""
        return (self.shutdown_date - today).days if self.shutdown_date else None

    def warnings(self, today: date, fix: str | None = None) -> list[str]:
        """Plain-text problems an admin should act on; `fix` is the FRUGAL_MODELS line without retired models."""
        found = []
        days = self.days_left(today)
        if self.retired is not None:
            text = f"{self.model} {self.retired.why}; Frugal skips it without calling it."
            if self.replacement:
                text += f" OpenAI's replacement: {self.replacement}."
            if fix:
                text += f" Fix: set FRUGAL_MODELS={fix}"
            found.append(text)
        elif days is not None and days <= SHUTDOWN_WARNING_DAYS:
            replacement = f" (OpenAI's replacement: {self.replacement})" if self.replacement else ""
            found.append(
                f"{self.model} shuts down on {self.shutdown_date:%Y-%m-%d} ({_in_days(days)}); "
                f"replace it in FRUGAL_MODELS{replacement} before then."
            )
        if self.price is None:
            found.append(
                f'{self.model} has no known price, so its cost shows as "price unknown"; '
                "add it to the FRUGAL_MODEL_CATALOG file."
            )
        return found


@dataclass(frozen=True)
class LifecycleReport:
    """One check of the configured models against the endpoint's model list."""

    checked_at: datetime
    models: tuple[ModelLifecycle, ...]
    listing_problem: str | None  # why the endpoint's list could not be read, or None
    endpoint_ids: tuple[str, ...] = ()

    def warnings(self) -> list[str]:
        """Every model's warnings, in chain order."""
        today = self.checked_at.date()
        fix = self.fixed_chain()
        return [warning for model in self.models for warning in model.warnings(today, fix)]

    def retirements(self) -> tuple[Retirement, ...]:
        """The retired models of the chain."""
        return tuple(model.retired for model in self.models if model.retired is not None)

    def fixed_chain(self) -> str | None:
        """FRUGAL_MODELS with each retired model replaced by OpenAI's replacement (or dropped); None if none is retired."""
        if not self.retirements():
            return None
        kept = [model.configured_as for model in self.models if model.retired is None]
        listed = set(self.endpoint_ids) if self.endpoint_ids else None
        chain: list[str] = []
        for model in self.models:
            if model.retired is None:
                chain.append(model.configured_as)
                continue
            # The replacement takes the retired model's place, unless the chain has it already (then
            # the chain's own order stands) or the endpoint does not offer it.
            replacement = model.replacement
            if (
                replacement
                and replacement not in kept
                and replacement not in chain
                and (listed is None or replacement in listed)
            ):
                chain.append(replacement)
        return ",".join(chain) or None


@dataclass(frozen=True)
class ModelView:
    """One row of `/frugal models`: a model of the chain, its health and its lifecycle."""

    position: int
    lifecycle: ModelLifecycle
    health: ModelHealth


@dataclass(frozen=True)
class ModelsOverview:
    """The chain as `/frugal models` shows it."""

    rows: tuple[ModelView, ...]
    report: LifecycleReport
    warnings: tuple[str, ...]


def identify(name: str, catalog: Catalog, listed: Iterable[str] | None) -> str:
    """The canonical id for a configured name; raises UnknownModelError (with did-you-mean) otherwise.

    Catalog ids and aliases are accepted, and so is any id the endpoint lists. A name close to a
    known one is a typo; a name neither known nor listed is refused when the endpoint could list.
    """
    info = catalog.get(name)
    if info is not None:
        return info.id
    live = tuple(listed) if listed is not None else None
    if live is not None and name in live:
        return name
    suggestion = catalog.suggest(name, live or ())
    if suggestion is not None or live is not None:
        raise UnknownModelError(name, suggestion)
    return name


def check_model_ids(configured: Iterable[str], catalog: Catalog, listed: Iterable[str] | None) -> tuple[str, ...]:
    """Canonical ids for FRUGAL_MODELS; raises ConfigError naming the variable and the fix."""
    live = tuple(listed) if listed is not None else None
    chain = []
    for name in configured:
        try:
            chain.append(identify(name, catalog, live))
        except UnknownModelError as err:
            raise ConfigError(f"FRUGAL_MODELS: {err}") from None
    return tuple(chain)


def resolve_baseline(catalog: Catalog, name: str | None) -> str:
    """The baseline model's canonical id; raises ConfigError for an unknown FRUGAL_BASELINE_MODEL."""
    if name is None:
        return catalog.baseline_model
    try:
        resolved = catalog.resolve(name)
    except UnknownModelError as err:
        raise ConfigError(f"FRUGAL_BASELINE_MODEL: {err}") from None
    if price_sheet(catalog, resolved) is None:
        raise ConfigError(f"FRUGAL_BASELINE_MODEL: {resolved!r} has no known price to compare with")
    return resolved


class LifecycleService:
    """Checks the configured models against GET /v1/models at start and daily."""

    def __init__(
        self,
        lister: ModelLister,
        catalog: Catalog,
        configured: tuple[str, ...],
        *,
        health: ModelHealthReader | None = None,
        clock: Callable[[], datetime] = _utcnow,
        retired: RetiredModels | None = None,
        alerts: AdminAlerts | None = None,
        default_chain: bool = False,
    ) -> None:
        self._lister = lister
        self._catalog = catalog
        self._configured = configured
        self._health = health
        self._clock = clock
        self._retired = retired
        self._alerts = alerts
        self._announced: set[str] = set()
        # The default chain starts with gpt-4.1-nano wherever an endpoint still serves it: its
        # retirement is expected there, and the chain goes on to its successors, so nobody is paged.
        self._expected_retired = configured[0] if default_chain and configured else None
        self._last: LifecycleReport | None = None

    async def startup(self) -> LifecycleReport:
        """Check at start: an unknown model ID or a refused API key stops the start (ConfigError)."""
        listing = await list_remote_models(self._lister)
        if listing.refused is not None and listing.refused.status == 401:
            raise ConfigError(f"OPENAI_API_KEY: the endpoint refused the key (HTTP {listing.refused.status})")
        remote = listing.models
        check_model_ids(self._configured, self._catalog, [m.id for m in remote] if remote is not None else None)
        return await self._record(remote, listing.problem)

    async def refresh(self) -> LifecycleReport:
        """Re-read GET /v1/models and log what needs the admins; never stops anything."""
        listing = await list_remote_models(self._lister)
        return await self._record(listing.models, listing.problem)

    async def report(self) -> LifecycleReport:
        """The latest report, refreshed when there is none yet or it is a day old."""
        if self._last is None or self._clock() - self._last.checked_at >= REFRESH_EVERY:
            return await self.refresh()
        return self._last

    async def lifecycle_warnings(self) -> list[str]:
        """Plain-text warnings for admins: shutdowns within 30 days, retired or unavailable models."""
        warnings = (await self.report()).warnings()
        if self._health is not None:
            warnings += [_health_warning(h) for h in await self._health.model_health() if h.state == "unavailable"]
        return warnings

    async def overview(self) -> ModelsOverview:
        """The chain with each model's health, listing, shutdown date and price."""
        report = await self.report()
        health = {h.model: h for h in await self._health.model_health()} if self._health else {}
        rows = tuple(
            ModelView(position=i, lifecycle=model, health=health.get(model.model, ModelHealth(model.model, "healthy")))
            for i, model in enumerate(report.models)
        )
        return ModelsOverview(rows=rows, report=report, warnings=tuple(await self.lifecycle_warnings()))

    async def retry(self, name: str) -> str:
        """Clear a model's "unavailable" mark (an admin's `/frugal models retry`); what happened, in plain words."""
        try:
            model = self._catalog.resolve(name)
        except UnknownModelError:
            model = name
        report = await self.report()
        chain = {m.model: m for m in report.models}
        if model not in chain:
            raise ValueError(f"{name!r} is not in the model chain ({', '.join(chain)}).")
        if chain[model].retired is not None:
            return (
                f"{model} {chain[model].retired.why}: Frugal skips it until the endpoint lists it again "
                "(checked daily); there is no mark to clear."
            )
        if self._health is None or not await self._health.clear_mark(model):
            return f"{model} was not marked unavailable; nothing to clear."
        return f"{model}'s mark is cleared: the next request tries it again."

    async def run_daily(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Refresh once a day, forever (cancel the task to stop)."""
        while True:
            await sleep(REFRESH_EVERY.total_seconds())
            await self.refresh()

    async def _record(self, remote: list[RemoteModel] | None, problem: str | None) -> LifecycleReport:
        report = build_report(self._configured, self._catalog, remote, problem, self._clock())
        self._last = report
        if self._retired is not None:
            self._retired.replace(report.retirements())
        if problem:
            log.info("model lifecycle: %s; shutdown dates come from the catalog only", problem)
        for warning in report.warnings():
            log.warning("model lifecycle: %s", warning)
        await self._announce(report)
        return report

    async def _announce(self, report: LifecycleReport) -> None:
        """Tell the admins of each newly retired model once, with the replacement and the FRUGAL_MODELS fix."""
        today = report.checked_at.date()
        fix = report.fixed_chain()
        for model in report.models:
            if model.retired is None or model.model in self._announced:
                continue
            self._announced.add(model.model)
            if model.configured_as == self._expected_retired:
                log.info("model lifecycle: %s, the default chain's first model, is retired here; skipped", model.model)
                continue
            if self._alerts is not None:
                [text, *_] = model.warnings(today, fix)
                await self._alerts.alert(None, text, dedupe_key=f"retired:{model.model}")


@dataclass(frozen=True)
class Listing:
    """What GET /v1/models gave: the models, or None with the reason."""

    models: list[RemoteModel] | None
    problem: str | None = None
    refused: ModelCallError | None = None  # the endpoint refused the key
    unreachable: bool = False  # the endpoint did not answer at all


async def list_remote_models(lister: ModelLister, timeout: float = LIST_TIMEOUT_S) -> Listing:
    """The endpoint's models, or why they could not be listed; waits at most `timeout` seconds."""
    try:
        return Listing(await asyncio.wait_for(lister.list_models(), timeout))
    except ModelListUnavailable as err:
        return Listing(None, str(err), unreachable=err.unreachable)
    except ModelCallError as err:
        return Listing(None, f"the endpoint refused to list its models (HTTP {err.status})", err)
    except TimeoutError:
        # An outage at start must not hold the bot back from serving what it can.
        return Listing(None, f"the endpoint did not list its models within {timeout:g} s", unreachable=True)


def build_report(
    configured: Iterable[str],
    catalog: Catalog,
    remote: list[RemoteModel] | None,
    problem: str | None,
    checked_at: datetime,
) -> LifecycleReport:
    """What the endpoint's model list (None: unavailable, for `problem`) says of each configured model."""
    by_id = {m.id: m for m in remote} if remote is not None else None
    return LifecycleReport(
        checked_at=checked_at,
        models=tuple(model_lifecycle(name, catalog, by_id, checked_at.date()) for name in configured),
        listing_problem=problem,
        endpoint_ids=tuple(sorted(by_id)) if by_id is not None else (),
    )


def model_lifecycle(
    name: str, catalog: Catalog, remote: dict[str, RemoteModel] | None, today: date | None = None
) -> ModelLifecycle:
    """One configured model: in the catalog? listed? shutdown date? retired? price?

    The endpoint decides: a model GET /v1/models lists with no past shutdown_date is served (Azure,
    gateways and dedicated capacity keep models past OpenAI's date); a model it does not list, or
    lists with a past date, is retired. Where the endpoint has no model list, the catalog's date decides.
    """
    today = today or _utcnow().date()
    info = catalog.get(name)
    model = info.id if info else name
    listed_as = _listed_as(model, info.aliases if info else (), remote)
    catalog_date = info.shutdown_date if info else None
    if remote is not None:
        shutdown = listed_as.shutdown_date if listed_as else catalog_date
    else:
        shutdown = catalog_date
    retired = _retirement(model, listed_as, remote is not None, shutdown, today, info.replacement if info else None)
    return ModelLifecycle(
        model=model,
        configured_as=name,
        in_catalog=info is not None,
        listed=None if remote is None else listed_as is not None,
        shutdown_date=shutdown,
        price=price_sheet(catalog, model),
        retired=retired,
        replacement=info.replacement if info else None,
        price_source=price_source(catalog, model),
        energy_source=info.energy.source if info and info.energy else None,
    )


def _retirement(
    model: str,
    listed_as: RemoteModel | None,
    listing: bool,
    shutdown: date | None,
    today: date,
    replacement: str | None,
) -> Retirement | None:
    past = shutdown is not None and shutdown <= today
    if listing and listed_as is None:
        why = (
            f"was shut down on {shutdown:%Y-%m-%d}"
            if past
            else "is not offered by the endpoint (retired, or this API key has no access)"
        )
        return Retirement(model, shutdown, replacement, why)
    if listing and listed_as is not None and listed_as.shutdown_date is None:
        return None  # listed with no date: served, whatever OpenAI's own date says
    if past:
        return Retirement(model, shutdown, replacement, f"was shut down on {shutdown:%Y-%m-%d}")
    return None


def _listed_as(model: str, aliases: tuple[str, ...], remote: dict[str, RemoteModel] | None) -> RemoteModel | None:
    if remote is None:
        return None
    for name in (model, *aliases):
        if name in remote:
            return remote[name]
    return None


def _health_warning(health: ModelHealth) -> str:
    until = f" until {health.until:%Y-%m-%d %H:%M} UTC" if health.until else ""
    return f"{health.model} {health.reason or 'is unavailable'}; Frugal skips it{until}, then tries it again."


def _in_days(days: int) -> str:
    if days == 0:
        return "today"
    return "tomorrow" if days == 1 else f"in {days} days"
