"""Build Bolt's AsyncApp around the services."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.config import Settings
from bot.slack import listeners
from bot.slack.clients import ResponseUrlSession, respond_middleware, web_client
from bot.slack.deps import SlackDeps, attach
from bot.slack.once import DeliveryClaims, DuplicateDelivery, install_once_only

log = logging.getLogger(__name__)

UNEXPECTED_ERROR = "Sorry, something went wrong on Frugal's side. Please try again in a moment."


def build_bolt_app(
    settings: Settings, deps: SlackDeps, deliveries: DeliveryClaims, *, responses: ResponseUrlSession, **bolt_options: Any
) -> AsyncApp:
    """The AsyncApp with every listener registered, `deps` in each request's context, each delivery handled once."""
    client = web_client(settings.slack_bot_token, settings.slack_api_url)
    app = AsyncApp(
        name="frugal",
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        logger=logging.getLogger("frugal.bolt"),
        **bolt_options,
    )

    @app.middleware
    async def inject_deps(context: AsyncBoltContext, next) -> None:  # noqa: A002 (Bolt's name)
        attach(context, deps)
        await next()

    app.middleware(respond_middleware(responses))

    @app.error
    async def on_error(error: Exception, respond: AsyncRespond | None = None) -> None:
        if isinstance(error, DuplicateDelivery):
            return  # a retry or duplicate, acknowledged and dropped (logged where the claim was lost)
        # The one place unexpected errors end: logged by type (never message text), told to the user.
        log.error("unhandled %s in a Slack listener", type(error).__name__, exc_info=error)
        if respond is not None:
            await respond(text=UNEXPECTED_ERROR, response_type="ephemeral", replace_original=False)

    install_once_only(app, deliveries)
    listeners.register(app)
    return app
