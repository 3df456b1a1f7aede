"""Multi-workspace installs: Bolt's OAuth flow on Frugal's database, and uninstalls."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.config import Settings
from bot.slack.clients import web_client
from bot.slack.deps import deps_of

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_EXPIRATION_SECONDS = 600
NOT_INSTALLED = (
    "Frugal is not installed in this workspace (or was uninstalled). "
    "Ask a workspace admin to install it again from the app's install page; nothing was charged."
)

# What the code calls, scope by scope; manifest.yml must list the same.
BOT_SCOPES: tuple[str, ...] = (
    "commands",  # slash commands and shortcuts
    "chat:write",  # chat.postMessage, chat.postEphemeral
    "users:read",  # users.info for the admin check
    "app_mentions:read",  # app_mention events
    "channels:history",  # conversations.replies: a thread's first message, public channels
    "groups:history",  # the same in private channels
    "im:history",  # the same in direct messages
    "mpim:history",  # the same in group direct messages
    "channels:read",  # users.conversations: the App Home's "your channels", public
    "groups:read",  # the same, private channels the bot is in
    "files:write",  # files_upload_v2: the digest's chart
)


def build_oauth_settings(
    settings: Settings, installations: AsyncInstallationStore, states: AsyncOAuthStateStore
) -> AsyncOAuthSettings:
    """OAuth settings from Frugal's configuration, so Bolt never falls back on os.environ or slack.com."""
    if not settings.oauth_enabled:
        raise ValueError("OAuth needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
    logger = logging.getLogger("frugal.oauth")
    oauth = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=installations,
        # Frugal acts only as its bot: the latest bot token of the workspace is all it needs.
        installation_store_bot_only=True,
        state_store=states,
        state_expiration_seconds=STATE_EXPIRATION_SECONDS,
        logger=logger,
    )
    # The default authorize refreshes rotating tokens through slack.com; this one honours SLACK_API_URL.
    oauth.authorize = AsyncInstallationStoreAuthorize(
        logger=logger,
        installation_store=installations,
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        bot_only=True,
        client=web_client(None, settings.slack_api_url),
    )
    return oauth


async def on_tokens_revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """tokens_revoked: forget the revoked tokens; the workspace's usage history is kept."""
    store = deps_of(context).installations
    if store is None:
        log.warning(
            "Slack revoked Frugal's token in workspace %s; reinstall and update SLACK_BOT_TOKEN", context.team_id
        )
        return
    tokens = event.get("tokens") or {}
    for user_id in tokens.get("oauth") or []:
        await store.async_delete_installation(
            enterprise_id=context.enterprise_id, team_id=context.team_id, user_id=user_id
        )
    if tokens.get("bot"):
        # Every stored installation row carries the bot token, so none of them is usable any more.
        await store.async_delete_all(enterprise_id=context.enterprise_id, team_id=context.team_id)
    log.info("tokens revoked in workspace %s; installation removed", context.team_id)


async def on_app_uninstalled(context: AsyncBoltContext) -> None:
    """app_uninstalled: delete the workspace's installation; its ledger, quotas and settings are kept."""
    store = deps_of(context).installations
    if store is None:
        log.warning("Frugal was uninstalled from workspace %s; reinstall to use it again", context.team_id)
        return
    await store.async_delete_all(enterprise_id=context.enterprise_id, team_id=context.team_id)
    log.info("Frugal uninstalled from workspace %s; installation removed, usage history kept", context.team_id)
