"""Straight-line forecasts of a USD limit: where this period's spend is heading, and when it would pass the limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from bot.ports.quota import Metric, QuotaUse

# Before this share of a period has passed, a few early requests would be extrapolated over the whole
# of it (one $0.01 rewrite in the first minute of a month is not $450 a month): the forecast waits.
MIN_ELAPSED_SHARE = Decimal("0.1")
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Forecast:
    """One USD limit's forecast for the period it counts (a projection of the spend so far, not a promise)."""

    use: QuotaUse
    elapsed_share: Decimal  # how much of the period has passed, 0 to 1
    projected: Decimal | None  # the spend at the period's end if it goes on at today's pace; None: too early
    over_at: datetime | None  # when the limit would be reached at that pace; None when it would not be

    @property
    def too_early(self) -> bool:
        """Too little of the period has passed to say."""
        return self.projected is None and not self.already_over

    @property
    def already_over(self) -> bool:
        """The limit is reached already."""
        return self.use.used >= self.use.limit

    @property
    def on_track(self) -> bool:
        """The projection stays within the limit."""
        return self.projected is not None and self.projected <= self.use.limit


def forecast(use: QuotaUse, now: datetime) -> Forecast | None:
    """The straight-line forecast of a USD limit at `now`; None for limits on requests or tokens."""
    if use.metric is not Metric.USD:
        return None
    # In UTC: subtracting two times of one zone would count wall-clock hours, wrong across a clock change.
    # In whole microseconds, so the share and the projection are exact decimals.
    start, end, now = (_utc(t) for t in (use.period_start, use.resets_at, now))
    length = (end - start) // _MICROSECOND
    elapsed = min(max((now - start) // _MICROSECOND, 0), length)
    share = Decimal(elapsed) / Decimal(length) if length > 0 else Decimal(1)
    if use.used >= use.limit:
        return Forecast(use, share, None, None)
    if share < MIN_ELAPSED_SHARE:
        return Forecast(use, share, None, None)
    projected = use.used / share
    over_at = None
    if projected > use.limit and use.used > 0:
        # At the pace so far (used per elapsed second), the limit is reached after limit / pace seconds.
        over_at = start + _MICROSECOND * int(Decimal(elapsed) * use.limit / use.used)
    return Forecast(use, share, projected, over_at)


def _utc(instant: datetime) -> datetime:
    # A time without a zone is UTC here, as the ledger and the quota store keep them.
    return instant.replace(tzinfo=timezone.utc) if instant.tzinfo is None else instant.astimezone(timezone.utc)


def forecasts(uses: tuple[QuotaUse, ...] | list[QuotaUse], now: datetime) -> list[Forecast]:
    """The forecasts of the USD limits among `uses`, in their order."""
    return [f for use in uses if (f := forecast(use, now)) is not None]
