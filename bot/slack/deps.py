"""What the listeners need from the services, handed to them through Bolt's context."""

from __future__ import annotations

from dataclasses import dataclass

from slack_bolt.context.async_context import AsyncBoltContext

from bot.services.rewrite import RewriteService
from bot.slack.admins import AdminDirectory

_KEY = "frugal"


@dataclass(frozen=True)
class SlackDeps:
    """The services the Slack listeners call."""

    rewrite: RewriteService
    admins: AdminDirectory


def attach(context: AsyncBoltContext, deps: SlackDeps) -> None:
    """Make `deps` available to every listener of this request."""
    context[_KEY] = deps


def deps_of(context: AsyncBoltContext) -> SlackDeps:
    """The services for this request."""
    return context[_KEY]
