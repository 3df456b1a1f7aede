"""The App Home service: the month, the user's channels, and the admin view with optional sources."""

from __future__ import annotations

from datetime import datetime, time, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.ports.digest_store import Frequency, Subscription
from bot.ports.model_status import ModelHealth
from bot.ports.quota import Metric, Period, QuotaUse
from bot.services import home
from bot.services.home import ChannelUsage, HomeService, month_bounds

NOW = datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)
PARIS = ZoneInfo("Europe/Paris")


class Ledger:
    """HomeQueries over a list, recording the windows asked for."""

    def __init__(self, usage: dict[str, list[ChannelUsage]], used: dict[tuple[str, str], set[str]]) -> None:
        self.usage, self.used, self.windows = usage, used, []

    async def usage_by_channel(self, team_id, start, end):
        self.windows.append((start, end))
        return self.usage.get(team_id, [])

    async def channels_used_by(self, team_id, user_id, start, end):
        return self.used.get((team_id, user_id), set())


class Quotas:
    async def channel_quotas(self, team_id, channel_id, at):
        return [QuotaUse("channel", channel_id, Metric.REQUESTS, Period.DAY, Decimal(10), Decimal(3), at, at)]


class Digests:
    async def subscriptions(self, channel_id=None):
        return [
            Subscription(1, "T1", "C9", Frequency.DAILY, time(9), "U1", NOW),
            Subscription(2, "T2", "C8", Frequency.WEEKLY, time(9), "U1", NOW),
        ]


class Health:
    async def model_health(self):
        return [ModelHealth("gpt-4.1-nano", "healthy")]


def _use(channel: str, cost: str, requests: int = 1) -> ChannelUsage:
    return ChannelUsage(channel, requests, 10 * requests, Decimal(cost))


def test_the_month_is_counted_in_the_configured_zone():
    # 23:30 UTC on 31 December is already January in Paris.
    start, end = month_bounds(NOW, PARIS)
    assert start == datetime(2026, 12, 31, 23, 0, tzinfo=timezone.utc)
    assert end == datetime(2027, 1, 31, 23, 0, tzinfo=timezone.utc)
    assert month_bounds(NOW, ZoneInfo("UTC")) == (
        datetime(2026, 12, 1, tzinfo=timezone.utc),
        datetime(2027, 1, 1, tzinfo=timezone.utc),
    )


async def test_a_user_sees_their_channels_costliest_first_and_no_admin_view():
    ledger = Ledger({"T1": [_use("C1", "0.1"), _use("C2", "0.5"), _use("C3", "0.9")]}, {("T1", "U1"): {"C1"}})
    service = HomeService(ledger, PARIS, health=Health(), clock=lambda: NOW)

    view = await service.view("T1", "U1", {"C2", "C7"}, is_admin=False)

    assert [u.channel_id for u in view.channels] == ["C2", "C1"]
    assert view.admin is None and view.models == (ModelHealth("gpt-4.1-nano", "healthy"),)
    assert ledger.windows == [month_bounds(NOW, PARIS)]


async def test_admins_see_used_and_subscribed_channels_of_their_workspace_only():
    ledger = Ledger({"T1": [_use("C1", "0.1"), _use("C2", "0.5")]}, {})
    service = HomeService(ledger, PARIS, quotas=Quotas(), digests=Digests(), clock=lambda: NOW)

    view = await service.view("T1", "U1", set(), is_admin=True)

    assert [s.channel_id for s in view.admin] == ["C2", "C1", "C9"]
    assert view.admin[2].usage is None and view.admin[2].digest.frequency is Frequency.DAILY
    assert all(s.quotas and s.quotas[0].target == s.channel_id for s in view.admin)
    assert view.models is None and view.digests_known


async def test_without_quota_and_digest_sources_the_admin_view_says_unknown():
    service = HomeService(Ledger({"T1": [_use("C1", "0.1")]}, {}), PARIS, clock=lambda: NOW)

    view = await service.view("T1", "U1", set(), is_admin=True)

    [setup] = view.admin
    assert setup.quotas is None and setup.digest is None and not view.digests_known


async def test_the_admin_view_is_capped_for_the_home_tab(monkeypatch):
    monkeypatch.setattr(home, "ADMIN_CHANNELS_SHOWN", 2)
    ledger = Ledger({"T1": [_use(f"C{i}", str(i)) for i in range(5)]}, {})
    service = HomeService(ledger, PARIS, quotas=Quotas(), clock=lambda: NOW)

    view = await service.view("T1", "U1", set(), is_admin=True)

    assert [s.channel_id for s in view.admin] == ["C4", "C3"] and view.admin_hidden == 3
