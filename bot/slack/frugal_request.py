"""One /frugal invocation as its subcommand gets it (bot/slack/listeners/frugal.py picks the subcommand)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.deps import SlackDeps


@dataclass(frozen=True)
class FrugalRequest:
    """One /frugal invocation, handed to its subcommand."""

    ack: AsyncAck
    respond: AsyncRespond
    client: AsyncWebClient
    command: dict[str, Any]
    args: str
    deps: SlackDeps

    @property
    def team_id(self) -> str:
        """The workspace the command came from."""
        return self.command["team_id"]

    @property
    def channel_id(self) -> str:
        """The channel the command was typed in."""
        return self.command["channel_id"]

    @property
    def user_id(self) -> str:
        """Who typed the command."""
        return self.command["user_id"]

    async def require_admin(self) -> bool:
        """True for admins; otherwise acks with a refusal and returns False."""
        if await self.deps.admins.is_admin(self.client, self.team_id, self.user_id):
            return True
        await self.ack(response_type="ephemeral", text="Only Frugal admins and workspace admins can do that.")
        return False


Subcommand = Callable[[FrugalRequest], Awaitable[None]]
