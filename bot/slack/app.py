"""Build Bolt's AsyncApp around the services."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse

from bot.config import Settings
from bot.slack import listeners
from bot.slack.call_context import missing_field
from bot.slack.clients import ResponseUrlSession, respond_middleware, web_client
from bot.slack.deps import SlackDeps, WorkspaceOrgs, attach
from bot.slack.in_flight import InFlight
from bot.slack.once import DeliveryClaims, install_once_only, once_only

log = logging.getLogger(__name__)

UNEXPECTED_ERROR = "Sorry, something went wrong on Frugal's side. Please try again in a moment."
INCOMPLETE = "Slack sent this request without its {field}, so Frugal did nothing. Please try again."

Next = Callable[[], Awaitable[None]]


class FrugalApp(AsyncApp):
    """Bolt's AsyncApp, keeping its signing secret for the web layer, which checks signatures before Bolt parses a body."""

    def __init__(self, *, signing_secret: str, **options: Any) -> None:
        super().__init__(signing_secret=signing_secret, **options)
        self._frugal_signing_secret = signing_secret
        # The listeners running after their ack, registered by their wrapper (bot.slack.once.once_only).
        self.in_flight = InFlight()

    @property
    def signing_secret(self) -> str:
        """The secret Slack signs requests with ("" when none is configured: then nothing verifies)."""
        return self._frugal_signing_secret


def build_bolt_app(
    settings: Settings,
    deps: SlackDeps,
    deliveries: DeliveryClaims,
    *,
    responses: ResponseUrlSession,
    **bolt_options: Any,
) -> FrugalApp:
    """The AsyncApp with every listener registered, `deps` in each request's context, each delivery handled once."""
    client = web_client(settings.slack_bot_token, settings.slack_api_url)
    app = FrugalApp(
        name="frugal",
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        logger=logging.getLogger("frugal.bolt"),
        **bolt_options,
    )

    @app.middleware
    async def inject_deps(context: AsyncBoltContext, next: Next) -> None:  # noqa: A002 (Bolt's name)
        attach(context, deps)
        await next()

    app.middleware(respond_middleware(responses))
    app.middleware(people_only)
    app.middleware(complete_payloads)
    if app.oauth_flow is None:
        app.middleware(installation_workspace)
    elif deps.workspaces is not None:
        app.middleware(remember_grid_org(deps.workspaces))

    app.error(on_error)
    install_once_only(app, deliveries)
    # Registered wrapped, so each delivery is marked done when its listener returns (bot.slack.once).
    for method, matcher, listener in listeners.LISTENERS:
        getattr(app, method)(matcher)(once_only(listener, report=on_error, in_flight=app.in_flight))
    return app


async def on_error(error: Exception, respond: AsyncRespond | None = None) -> None:
    """Bolt's error handler, the one place unexpected errors end: logged by type (never message text), told to the user."""
    log.error("unhandled %s in a Slack listener", type(error).__name__, exc_info=error)
    if respond is not None and respond.response_url:  # events have none: nowhere to say it
        await respond(text=UNEXPECTED_ERROR, response_type="ephemeral", replace_original=False)


async def people_only(body: dict[str, Any], context: AsyncBoltContext, next: Next) -> BoltResponse | None:  # noqa: A002
    """Bolt middleware: an event a bot made (another app's, a workflow's, Frugal's own) is acknowledged, nothing else.

    Answering bots is how two apps end up answering each other forever, each reply charged.
    """
    event = body.get("event") if body.get("type") == "event_callback" else None
    if isinstance(event, dict) and made_by_a_bot(event, context.bot_user_id):
        return BoltResponse(status=200, body="")  # next() not called: no listener runs, no claim is written
    await next()
    return None


def made_by_a_bot(event: dict[str, Any], own_user_id: str | None) -> bool:
    """True for an event a bot made: it carries a bot_id (modern bot messages also carry a user), or is Frugal's."""
    return bool(
        event.get("bot_id")
        or event.get("bot_profile")
        or event.get("subtype") == "bot_message"
        or (own_user_id and event.get("user") == own_user_id)
    )


async def complete_payloads(body: dict[str, Any], context: AsyncBoltContext, next: Next) -> BoltResponse | None:  # noqa: A002
    """Bolt middleware: a payload without a field Frugal's listeners need gets a plain answer; no listener runs."""
    field = missing_field(body)
    if field is None:
        await next()
        return None
    event = body.get("event")
    kind = body.get("command") or (event.get("type") if isinstance(event, dict) else body.get("type"))
    log.warning("a Slack %s arrived without its %s; nothing was done", kind, field)
    text = INCOMPLETE.format(field=field)
    if body.get("command"):
        return BoltResponse(
            status=200,
            body=json.dumps({"response_type": "ephemeral", "text": text}),
            headers={"content-type": "application/json"},
        )
    if context.response_url:
        # An interaction's acknowledgement shows nothing; its response_url does (posted before the ack: rare).
        await context.respond(text=text, response_type="ephemeral", replace_original=False)
    return BoltResponse(status=200, body="")


async def installation_workspace(body: dict[str, Any], context: AsyncBoltContext, next: Next) -> None:  # noqa: A002
    """Bolt middleware, single-workspace mode: the request's workspace is the installation's, not the payload's.

    In a channel shared with a connected workspace, that workspace's people send their own team_id; they
    use this installation and count against its channels' quotas like anyone else. Listeners read the
    team from the context or the payload, so both are given the installation's team (auth.test's).
    """
    authorized = context.authorize_result
    team_id = authorized.team_id if authorized is not None else None
    if team_id and context.team_id != team_id:
        context["team_id"] = team_id
        if "team_id" in body:  # slash commands, events
            body["team_id"] = team_id
        if isinstance(body.get("team"), dict):  # interactivity: buttons, shortcuts, views
            body["team"]["id"] = team_id
    await next()


def remember_grid_org(workspaces: WorkspaceOrgs) -> Callable[..., Awaitable[None]]:
    """Bolt middleware, OAuth mode: remember which Enterprise Grid org each workspace's requests come through.

    Digests and admin alerts look up a workspace's bot token with no request to read the org from;
    the installation store finds a Grid workspace's token only with its org (and whether the install
    is org-wide).
    """

    async def remember(context: AsyncBoltContext, next: Next) -> None:  # noqa: A002 (Bolt's name)
        if context.enterprise_id and context.team_id:
            await workspaces.remember(context.team_id, context.enterprise_id, bool(context.is_enterprise_install))
        await next()

    return remember
