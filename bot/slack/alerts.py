"""Admin alerts as Slack DMs to each FRUGAL_ADMINS user, at most once an hour per problem; quota alerts too."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports.alerts import QuotaAlert
from bot.ports.quota import Metric, Mode
from bot.slack.clients import web_client
from bot.slack.digest_publisher import TokenFor
from bot.slack.markup import defuse, escape
from bot.slack.quota_blocks import amount, per_period, slack_date

log = logging.getLogger(__name__)

DEDUPE_SECONDS = 3600.0


class SlackAdminAlerts:
    """AdminAlerts that logs each alert and DMs it to the configured admins in the background."""

    def __init__(
        self,
        admins: frozenset[str],
        *,
        api_url: str,
        token_for: TokenFor,
        clock: Callable[[], float] = time.monotonic,
        dedupe_seconds: float = DEDUPE_SECONDS,
    ) -> None:
        self._admins = sorted(admins)
        self._api_url = api_url
        self._token_for = token_for
        self._clock = clock
        self._dedupe_seconds = dedupe_seconds
        self._quiet_until: dict[str, float] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def alert(self, team_id: str | None, text: str, *, dedupe_key: str | None = None) -> None:
        """Log the alert and DM it to each admin, unless the same problem was reported within the hour."""
        key = dedupe_key or text
        now = self._clock()
        if self._quiet_until.get(key, now) > now:
            return
        self._quiet_until[key] = now + self._dedupe_seconds
        log.warning("admin alert: %s", text)
        if not self._admins:
            return
        # The user's answer must not wait on Slack; aclose() waits for what is still being sent.
        task = asyncio.create_task(self._send(team_id, text))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def quota_alert(self, alert: QuotaAlert) -> None:
        """Post the alert in its channel (a DM for a person's limit) and DM it to the admins, in the background."""
        task = asyncio.create_task(self._send_quota_alert(alert))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def aclose(self) -> None:
        """Wait for alerts still being sent."""
        if self._sending:
            await asyncio.gather(*self._sending)

    async def _send(self, team_id: str | None, text: str) -> None:
        token = await self._token_for(team_id)
        if token is None:
            log.warning("admin alert not sent to Slack: no bot token for workspace %s", team_id)
            return
        client = web_client(token, self._api_url)
        for admin in self._admins:
            try:
                await client.chat_postMessage(channel=admin, text=f":warning: *Frugal needs an admin:* {text}")
            except SlackApiError as err:
                log.warning("admin alert not delivered to %s (%s)", admin, err.response.get("error"))
            except (TimeoutError, aiohttp.ClientError) as err:
                log.warning("admin alert not delivered to %s (%s)", admin, type(err).__name__)

    async def _send_quota_alert(self, alert: QuotaAlert) -> None:
        try:
            token = await self._token_for(alert.team_id)
            if token is None:
                log.warning("quota alert not sent to Slack: no bot token for workspace %s", alert.team_id)
                return
            client = web_client(token, self._api_url)
            top = await _top_words(client, alert)
            per_person = alert.use.scope == "user"
            here = quota_alert_text(alert, top, whose="Your personal" if per_person else "This channel's")
            # A DM to a person's own limit's owner; the limit's channel otherwise.
            destinations = [(alert.counted, here)]
            owner = f"<@{alert.counted}>'s personal" if per_person else f"<#{alert.counted}>'s"
            admin_text = quota_alert_text(alert, top, whose=owner)
            destinations += [(admin, admin_text) for admin in self._admins if admin != alert.counted]
        except Exception as err:  # noqa: BLE001 (an alert must never fail the request that crossed it)
            log.warning("quota alert not prepared (%s)", type(err).__name__)
            return
        for channel, text in destinations:
            try:
                await client.chat_postMessage(channel=channel, text=text)
            except SlackApiError as err:
                log.warning("quota alert not delivered to %s (%s)", channel, err.response.get("error"))
            except (TimeoutError, aiohttp.ClientError) as err:
                log.warning("quota alert not delivered to %s (%s)", channel, type(err).__name__)


def quota_alert_text(alert: QuotaAlert, top: str | None, *, whose: str) -> str:
    """':bell: This channel's quota of *$5.00 per month* is at 80 %: $4.02 of $5.00 used. It resets …'."""
    use = alert.use
    used = amount(use.metric, use.used) if use.metric is Metric.USD else f"{int(use.used):,}"
    limit = per_period(use.metric, use.limit, use.period.value)
    state = "is used up" if alert.refused else f"has reached {alert.threshold} %"
    # A refusal can come while requests in progress hold the rest of the limit.
    held = " (the rest is held by requests in progress)" if alert.refused and use.used < use.limit else ""
    after = (
        " It only warns: requests are still answered."
        if use.mode is Mode.WARN
        else f" Past {use.downgrade} % requests go to the cheapest model."
        if use.downgrade is not None
        else " Requests that do not fit are refused until then."
        if alert.refused or alert.threshold >= 100
        else ""
    )
    most = f" {top}." if top else ""
    return defuse(
        f":bell: *Quota alert:* {whose} quota of *{limit}* {state}: {used} of {amount(use.metric, use.limit)} used{held}. "
        f"It resets {slack_date(use.resets_at)}.{after}{most}"
    )


async def _top_words(client: AsyncWebClient, alert: QuotaAlert) -> str | None:
    """Who used most, in words that notify nobody: a person's escaped name, or the channel a person used most."""
    if alert.top is None:
        return None
    who, used = alert.top
    share = amount(alert.use.metric, used) if alert.use.metric is Metric.USD else f"{int(used):,}"
    if alert.use.scope == "user":
        return f"Most of it in <#{who}> ({share})" if who else None
    name = who
    try:
        user = (await client.users_info(user=who))["user"]
        profile = user.get("profile") or {}
        name = profile.get("display_name") or user.get("real_name") or user.get("name") or who
    except (TimeoutError, SlackApiError, aiohttp.ClientError) as err:
        log.warning("users.info failed for a quota alert (%s)", type(err).__name__)
    return f"Most used by {escape(name)} ({share})"
