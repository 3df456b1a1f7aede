"""What the listeners need from the services, handed to them through Bolt's context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore

from bot.services.classify import ClassifyService
from bot.services.digest import DigestService
from bot.services.home import HomeService
from bot.services.lifecycle import LifecycleService
from bot.services.quota import QuotaService
from bot.services.rewrite import RewriteService
from bot.services.usage import UsageService
from bot.services.usage_export import UsageExporter
from bot.slack.admins import AdminDirectory

_KEY = "frugal"


class WorkspaceOrgs(Protocol):
    """Which Enterprise Grid org each workspace is installed through (bot.infra.db.slack_stores.SqlWorkspaceOrgs)."""

    async def remember(self, team_id: str, enterprise_id: str, is_enterprise_install: bool) -> None:
        """Record that the workspace's requests come through this org (and whether the install is org-wide)."""
        ...

    async def org_of(self, team_id: str) -> tuple[str, bool] | None:
        """(enterprise_id, is_enterprise_install) of the workspace, or None outside Enterprise Grid."""
        ...


@dataclass(frozen=True)
class SlackDeps:
    """The services the Slack listeners call."""

    rewrite: RewriteService
    admins: AdminDirectory
    classify: ClassifyService
    models: LifecycleService
    digests: DigestService
    home: HomeService = field(kw_only=True)
    # /usage: the channel's usage, cost and quota headroom.
    usage: UsageService = field(kw_only=True)
    # OAuth mode only: where installations are kept. Keyword-only, so later fields need no default.
    installations: AsyncInstallationStore | None = field(default=None, kw_only=True)
    # OAuth mode only: each Grid workspace's org, for the token lookups of digests and admin alerts.
    workspaces: WorkspaceOrgs | None = field(default=None, kw_only=True)
    # Limits and their use (/frugal quota, /usage); None only where a test builds deps without quotas.
    quota: QuotaService | None = field(default=None, kw_only=True)
    # /frugal usage export: a month's usage day by day; None only where a test builds deps without it.
    usage_export: UsageExporter | None = field(default=None, kw_only=True)


def attach(context: AsyncBoltContext, deps: SlackDeps) -> None:
    """Make `deps` available to every listener of this request."""
    context[_KEY] = deps


def deps_of(context: AsyncBoltContext) -> SlackDeps:
    """The services for this request."""
    return context[_KEY]
