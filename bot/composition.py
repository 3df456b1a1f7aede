"""The composition root: builds every part of Frugal from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.catalog import Catalog
from bot.config import Settings
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.ledger import SqlLedger
from bot.infra.openai_chat import OpenAIChatModel
from bot.router.router import ModelRouter
from bot.services.rewrite import RewriteService
from bot.slack.admins import AdminDirectory
from bot.slack.app import build_bolt_app
from bot.slack.deps import SlackDeps


@dataclass
class Container:
    """Everything one Frugal process runs on."""

    settings: Settings
    engine: AsyncEngine
    catalog: Catalog
    chat_model: OpenAIChatModel
    router: ModelRouter
    bolt: AsyncApp

    async def aclose(self) -> None:
        """Release connections."""
        await self.chat_model.close()
        await self.engine.dispose()


def build_container(settings: Settings) -> Container:
    """Wire the process together; nothing here touches the network."""
    catalog = Catalog.load(settings.catalog_file)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    chat_model = OpenAIChatModel(
        api_key=settings.openai_api_key, base_url=settings.openai_base_url, timeout=settings.model_timeout
    )
    chain = tuple(catalog.get(m).id if catalog.get(m) else m for m in settings.models)
    router = ModelRouter(
        chat_model,
        catalog,
        SqlLedger(sessions),
        chain,
        baseline_model=settings.baseline_model or catalog.baseline_model,
    )
    deps = SlackDeps(
        rewrite=RewriteService(router, max_input_chars=settings.max_input_chars),
        admins=AdminDirectory(settings.admins),
    )
    bolt = build_bolt_app(settings, deps)
    return Container(settings=settings, engine=engine, catalog=catalog, chat_model=chat_model, router=router, bolt=bolt)
