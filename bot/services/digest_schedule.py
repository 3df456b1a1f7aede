"""When digests are due: periods and send times in FRUGAL_TIMEZONE (DST-correct), and the grace for catching up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.ports.digest_store import DigestSlot, Frequency, Subscription

DAY = timedelta(days=1)
DEFAULT_SEND_TIME = time(9, 0)


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def grace(frequency: Frequency) -> timedelta:
    """How late a missed digest is still posted after downtime.

    A day and a half for daily digests: an outage through a night and the next day still
    delivers yesterday's digest. Eight days for weekly ones: even a week-long freeze still
    delivers last week's. Either way at most two digests of a channel are due at once, and
    anything older is skipped: by then a newer digest covers the channel.
    """
    return timedelta(hours=36) if frequency is Frequency.DAILY else timedelta(days=8)


def at_local(day: date, clock_time: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local day (a time skipped by DST comes an hour later)."""
    return datetime.combine(day, clock_time, tzinfo=tz).astimezone(timezone.utc)


def _shift_wall_clock(instant: datetime, days: int, tz: ZoneInfo) -> datetime:
    local = instant.astimezone(tz).replace(tzinfo=None) - timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(timezone.utc)


@dataclass(frozen=True)
class DigestPeriod:
    """The local days a digest covers, with their bounds in UTC (end exclusive)."""

    frequency: Frequency
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    complete: bool

    @classmethod
    def ending_before(cls, frequency: Frequency, send_day: date, tz: ZoneInfo) -> DigestPeriod:
        """The complete period that a digest sent on `send_day` covers: the days just before it."""
        first = send_day - frequency.days * DAY
        return cls(
            frequency, at_local(first, time(0), tz), at_local(send_day, time(0), tz), first, send_day - DAY, True
        )

    @classmethod
    def to_date(cls, frequency: Frequency, now: datetime, tz: ZoneInfo) -> DigestPeriod:
        """The current period so far: today, or this week since Monday."""
        today = now.astimezone(tz).date()
        first = today if frequency is Frequency.DAILY else today - today.weekday() * DAY
        return cls(frequency, at_local(first, time(0), tz), now, first, today, False)

    @property
    def days(self) -> int:
        """Local days between the starts of this period and the one before."""
        return (self.last_day - self.first_day).days + 1 if self.complete else self.frequency.days

    def previous(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The period before, as long as this one (the same elapsed part of it for a period to date)."""
        return at_local(self.first_day - self.days * DAY, time(0), tz), _shift_wall_clock(self.end, self.days, tz)


@dataclass(frozen=True)
class DueDigest:
    """One scheduled digest: when it was due, and the period it covers."""

    due_at: datetime
    period: DigestPeriod

    @property
    def slot(self) -> DigestSlot:
        """What the store claims for it."""
        return DigestSlot(self.due_at, self.period.start, self.period.end)


def due_digests(sub: Subscription, now: datetime, tz: ZoneInfo) -> list[DueDigest]:
    """Sends of `sub` that are due: scheduled since it began, at most `grace` ago; oldest first."""
    today = now.astimezone(tz).date()
    due = []
    window = grace(sub.frequency)
    for back in range(window.days + 2, -1, -1):
        day = today - back * DAY
        if sub.frequency is Frequency.WEEKLY and day.weekday() != 0:
            continue
        at = at_local(day, sub.send_time, tz)
        if sub.since <= at <= now and now - at <= window:
            due.append(DueDigest(at, DigestPeriod.ending_before(sub.frequency, day, tz)))
    return due


def next_send(frequency: Frequency, send_time: time, after: datetime, tz: ZoneInfo) -> datetime:
    """The first scheduled send strictly after `after`."""
    day = after.astimezone(tz).date()
    while True:
        at = at_local(day, send_time, tz)
        if at > after and (frequency is Frequency.DAILY or day.weekday() == 0):
            return at
        day += DAY
