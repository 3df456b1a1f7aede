"""A digest with every part filled in, for the Slack-side digest tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.ports.digest_store import Frequency
from bot.ports.quota import Metric, Period, QuotaUse
from bot.services.digest import DayCost, Digest, DigestPeriod, Energy, ModelUsage, Savings, UserCost

PARIS = ZoneInfo("Europe/Paris")


def sample_digest(**changes) -> Digest:
    """The weekly digest of C1 for Mon 26 Oct – Sun 1 Nov 2026 in Paris; keyword arguments replace fields."""
    period = DigestPeriod.ending_before(Frequency.WEEKLY, date(2026, 11, 2), PARIS)
    fields = dict(
        team_id="T1",
        channel_id="C1",
        period=period,
        timezone="Europe/Paris",
        requests=40,
        prompt_tokens=123_400,
        cached_tokens=20_000,
        completion_tokens=45_600,
        cost_usd=Decimal("1.25"),
        unpriced=0,
        models=(ModelUsage("gpt-4.1-nano", 30, Decimal("0.75"), 0), ModelUsage("gpt-4o-mini", 10, Decimal("0.50"), 0)),
        savings=Savings("gpt-4o", Decimal("12.5"), Decimal("11.25"), 40),
        primary_model="gpt-4.1-nano",
        fallbacks=10,
        failures=(("rate_limit_exceeded", 7), ("model_not_found", 3)),
        quotas=(
            QuotaUse(
                "channel",
                "C1",
                Metric.USD,
                Period.MONTH,
                Decimal(5),
                Decimal("2.5"),
                datetime(2026, 10, 31, 23, tzinfo=timezone.utc),
                datetime(2026, 11, 30, 23, tzinfo=timezone.utc),
            ),
        ),
        top_users=(UserCost("U1", 25, Decimal("0.9")), UserCost("U2", 15, Decimal("0.35"))),
        energy=Energy(12.5, ("Jegham et al. 2025, arXiv 2505.09598",), 0),
        lifecycle_warnings=("gpt-4o-mini shuts down on 2026-11-20 (in 18 days).",),
        previous_requests=20,
        previous_cost_usd=Decimal("1.00"),
        days=tuple(
            DayCost(
                date(2026, 10, 26) + timedelta(days=i),
                {"gpt-4.1-nano": Decimal("0.1") * i, "gpt-4o-mini": Decimal("0.05")},
            )
            for i in range(7)
        ),
    )
    fields.update(changes)
    return Digest(**fields)
