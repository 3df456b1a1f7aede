"""The composition root: builds every part of Frugal from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from slack_bolt.async_app import AsyncApp
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.catalog import Catalog
from bot.config import DEFAULT_MODELS, Settings
from bot.infra.db import slack_stores
from bot.infra.db.button_texts import SqlButtonTexts
from bot.infra.db.classify_cache import SqlClassifyCache
from bot.infra.db.deliveries import SqlDeliveries
from bot.infra.db.digest_queries import SqlDigestQueries
from bot.infra.db.digest_store import SqlDigestStore
from bot.infra.db.engine import make_engine, make_sessionmaker, unavailable_as
from bot.infra.db.health import database_ping
from bot.infra.db.home_queries import SqlHomeQueries
from bot.infra.db.labels import SqlChannelLabels
from bot.infra.db.ledger import SqlLedger
from bot.infra.db.model_status import SqlModelStatusStore
from bot.infra.db.quota_store import SqlQuotaStore
from bot.infra.db.usage_export import SqlUsageExport
from bot.infra.db.usage_queries import SqlUsageQueries
from bot.infra.metrics import Metrics
from bot.infra.openai_chat import OpenAIChatModel
from bot.ports.model_status import RetiredModels
from bot.router.router import ModelRouter
from bot.services.classify import ClassifyService
from bot.services.digest import DigestBuilder, DigestService
from bot.services.home import HomeService
from bot.services.lifecycle import LifecycleService, resolve_baseline
from bot.services.quota import QuotaService
from bot.services.rewrite import RewriteService
from bot.services.usage import UsageService
from bot.services.usage_export import UsageExporter
from bot.slack import markup
from bot.slack.admins import AdminDirectory
from bot.slack.alerts import SlackAdminAlerts
from bot.slack.app import build_bolt_app
from bot.slack.buttons import attach_buttons
from bot.slack.clients import ResponseUrlSession
from bot.slack.deps import SlackDeps
from bot.slack.digest_chart import daily_cost_chart
from bot.slack.digest_publisher import SlackDigestPublisher, installation_tokens, static_token
from bot.slack.oauth import NOT_INSTALLED, STATE_EXPIRATION_SECONDS, build_oauth_settings


@dataclass
class Container:
    """Everything one Frugal process runs on."""

    settings: Settings
    engine: AsyncEngine
    catalog: Catalog
    chat_model: OpenAIChatModel
    router: ModelRouter
    bolt: AsyncApp
    lifecycle: LifecycleService = field(kw_only=True)
    alerts: SlackAdminAlerts = field(kw_only=True)
    digests: DigestService = field(kw_only=True)
    usage: UsageService = field(kw_only=True)
    quota: QuotaService = field(kw_only=True)
    metrics: Metrics = field(kw_only=True)
    # GET /healthz's question to the database (bot.web.server): raises StoreUnavailable when it is away.
    ping: Callable[[], Awaitable[None]] = field(kw_only=True)
    # Run every minute by the scheduler of `frugal run` (bot.scheduler).
    minute_jobs: list[Callable[[], Awaitable[object]]] = field(default_factory=list, kw_only=True)
    # Run once a day by the scheduler of `frugal run` (bot.scheduler).
    daily_jobs: list[Callable[[], Awaitable[object]]] = field(default_factory=list, kw_only=True)
    # Closed by aclose() before the engine: the once-only claims' own connections, respond()'s HTTP session.
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list, kw_only=True)

    async def aclose(self) -> None:
        """Release connections."""
        for close in self.closers:
            await close()
        await self.alerts.aclose()
        await self.chat_model.close()
        await self.engine.dispose()


def build_container(settings: Settings) -> Container:
    """Wire the process together; nothing here touches the network."""
    catalog = Catalog.load(settings.catalog_file)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    chat_model = OpenAIChatModel(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.model_timeout,
        organization=settings.openai_org_id,
        project=settings.openai_project_id,
    )
    chain = tuple(catalog.get(m).id if catalog.get(m) else m for m in settings.models)
    installations = (
        slack_stores.installation_store(settings.slack_client_id, engine) if settings.oauth_enabled else None
    )
    workspaces = slack_stores.SqlWorkspaceOrgs(engine) if installations is not None else None
    tokens = (
        installation_tokens(installations, workspaces)
        if installations is not None
        else static_token(settings.slack_bot_token)
    )
    alerts = SlackAdminAlerts(settings.admins, api_url=settings.slack_api_url, token_for=tokens)
    ledger = SqlLedger(sessions)
    quota = QuotaService(SqlQuotaStore(engine), catalog, chain, tz=settings.timezone, alerts=alerts)
    metrics = Metrics(quotas=quota)  # this process's own registry, served on GET /metrics
    retired = RetiredModels()  # filled by the lifecycle check at start and daily, read by the router
    router = ModelRouter(
        chat_model,
        catalog,
        metrics.ledger(ledger),
        chain,
        baseline_model=resolve_baseline(catalog, settings.baseline_model),
        status_store=SqlModelStatusStore(sessions),
        alerts=alerts,
        retired=retired,
    )
    lifecycle = LifecycleService(
        chat_model,
        catalog,
        settings.models,
        health=router,
        retired=retired,
        alerts=alerts,
        default_chain=settings.models == tuple(DEFAULT_MODELS.split(",")),
    )
    gated = quota.gate(metrics.completer(router))  # every model call reserves its worst case first
    usage = _usage_service(settings, sessions, quotas=quota)
    deps = SlackDeps(
        rewrite=RewriteService(gated, max_input_chars=settings.max_input_chars, masking=markup.mask),
        admins=AdminDirectory(settings.admins),
        classify=ClassifyService(
            gated,
            SqlChannelLabels(sessions),
            max_input_chars=settings.max_input_chars,
            service_tier="flex" if settings.classify_service_tier == "flex" else None,
            cache=SqlClassifyCache(sessions),
        ),
        models=lifecycle,
        digests=(digests := _digest_service(settings, sessions, catalog, chain, tokens, lifecycle, quota)),
        installations=installations,
        workspaces=workspaces,
        home=HomeService(
            SqlHomeQueries(sessions),
            settings.timezone,
            health=router,
            digests=SqlDigestStore(sessions),
            quotas=quota,
        ),
        quota=quota,
        usage=usage,
        usage_export=UsageExporter(SqlUsageExport(sessions), settings.timezone),
    )
    bolt_options = {}
    if installations is not None:
        states = slack_stores.state_store(engine, expiration_seconds=STATE_EXPIRATION_SECONDS)
        bolt_options["oauth_settings"] = build_oauth_settings(settings, installations, states)
        bolt_options["user_facing_authorize_error_message"] = NOT_INSTALLED
    deliveries = SqlDeliveries.beside(engine)  # its own small pool: the pre-ack claim never waits for post-ack work
    responses = ResponseUrlSession()
    bolt = build_bolt_app(settings, deps, deliveries, responses=responses, **bolt_options)
    buttons = SqlButtonTexts(sessions)  # what each button posts, kept server-side for a day
    bolt.middleware(attach_buttons(buttons))
    return Container(
        settings=settings,
        engine=engine,
        catalog=catalog,
        chat_model=chat_model,
        router=router,
        bolt=bolt,
        lifecycle=lifecycle,
        alerts=alerts,
        digests=digests,
        daily_jobs=[deliveries.purge, buttons.purge, deps.classify.purge_cache],
        closers=[ledger.drain, deliveries.aclose, responses.aclose],
        usage=usage,
        quota=quota,
        metrics=metrics,
        ping=database_ping(engine),
        minute_jobs=[quota.expire],
    )


def _digest_service(settings, sessions, catalog, chain, tokens, lifecycle, quota) -> DigestService:
    """Digests: ledger aggregations, subscriptions and claims in SQL, posted with each workspace's token."""
    builder = DigestBuilder(
        SqlDigestQueries(sessions),
        catalog,
        primary_model=chain[0],
        baseline_model=resolve_baseline(catalog, settings.baseline_model),
        tz=settings.timezone,
        lifecycle_warnings=lifecycle.lifecycle_warnings,
        quotas=quota,
    )
    publisher = SlackDigestPublisher(settings.slack_api_url, tokens)
    return DigestService(SqlDigestStore(sessions), builder, publisher, daily_cost_chart, tz=settings.timezone)


def _usage_service(settings: Settings, sessions, quotas) -> UsageService:
    """Usage reports: the ledger aggregated in SQL, with the quotas that apply."""
    return UsageService(SqlUsageQueries(sessions), quotas, settings.timezone)


@asynccontextmanager
async def usage_reports(settings: Settings) -> AsyncIterator[UsageService]:
    """Usage reports alone, for `frugal usage`: a database engine, and no Slack or OpenAI client."""
    engine = make_engine(settings.database_url)
    try:
        # Whatever the report reads raises StoreUnavailable while the database is away, as the stores do.
        with unavailable_as("the usage ledger cannot be read now"):
            yield _usage_service(settings, make_sessionmaker(engine), quotas=None)
    finally:
        await engine.dispose()


@asynccontextmanager
async def digest_subscriptions(settings: Settings) -> AsyncIterator[SqlDigestStore]:
    """Digest subscriptions alone, for `frugal digest` without --now: a database engine, no Slack or OpenAI client."""
    engine = make_engine(settings.database_url)
    try:
        yield SqlDigestStore(make_sessionmaker(engine))
    finally:
        await engine.dispose()
