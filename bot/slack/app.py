"""Build Bolt's AsyncApp around the services."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.slack import listeners
from bot.slack.deps import SlackDeps, attach

log = logging.getLogger(__name__)

UNEXPECTED_ERROR = "Sorry, something went wrong on Frugal's side; nothing was charged. Please try again."


def build_bolt_app(settings: Settings, deps: SlackDeps, **bolt_options: Any) -> AsyncApp:
    """The AsyncApp with every listener registered and `deps` in each request's context."""
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
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

    @app.error
    async def on_error(error: Exception, respond: AsyncRespond | None = None) -> None:
        # The one place unexpected errors end: logged by type (never message text), told to the user.
        log.error("unhandled %s in a Slack listener", type(error).__name__, exc_info=error)
        if respond is not None:
            await respond(text=UNEXPECTED_ERROR, response_type="ephemeral", replace_original=False)

    listeners.register(app)
    return app
