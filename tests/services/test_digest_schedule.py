"""Digest periods and send times in FRUGAL_TIMEZONE, across DST, and the grace window for catching up."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.ports.digest_store import Frequency, Subscription
from bot.services.digest_schedule import DigestPeriod, due_digests, next_send

PARIS = ZoneInfo("Europe/Paris")
UTC = timezone.utc


def _sub(frequency: Frequency, at: time, since: datetime, sub_id: int = 1) -> Subscription:
    return Subscription(sub_id, "T1", "C1", frequency, at, "UADMIN", since)


def test_a_daily_period_is_a_local_day_even_when_the_clocks_change():
    # 29 March 2026: Paris springs forward, the day has 23 hours; 25 October 2026 has 25.
    spring = DigestPeriod.ending_before(Frequency.DAILY, date(2026, 3, 30), PARIS)
    autumn = DigestPeriod.ending_before(Frequency.DAILY, date(2026, 10, 26), PARIS)

    assert (spring.start, spring.end) == (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))
    assert autumn.end - autumn.start == timedelta(hours=25)
    assert (autumn.first_day, autumn.last_day, autumn.complete) == (date(2026, 10, 25), date(2026, 10, 25), True)


def test_a_weekly_period_is_monday_to_sunday_before_the_send_day():
    period = DigestPeriod.ending_before(Frequency.WEEKLY, date(2026, 11, 2), PARIS)

    assert (period.first_day, period.last_day) == (date(2026, 10, 26), date(2026, 11, 1))
    assert period.previous(PARIS) == (datetime(2026, 10, 18, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC))


def test_sends_happen_at_the_local_wall_clock_time_across_dst():
    sub = _sub(Frequency.DAILY, time(9), datetime(2026, 3, 27, tzinfo=UTC))

    before = next_send(sub.frequency, sub.send_time, datetime(2026, 3, 28, 9, tzinfo=UTC), PARIS)
    after = next_send(sub.frequency, sub.send_time, before, PARIS)

    assert before == datetime(2026, 3, 29, 7, tzinfo=UTC)  # 09:00 CEST
    assert after == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert next_send(Frequency.WEEKLY, time(9), datetime(2026, 3, 27, tzinfo=UTC), PARIS) == datetime(
        2026, 3, 30, 7, tzinfo=UTC
    )  # the next Monday


def test_a_send_time_that_does_not_exist_that_day_comes_an_hour_later():
    # 02:30 does not exist in Paris on 29 March 2026 (02:00 → 03:00): the digest comes at 03:30 CEST, once.
    at = next_send(Frequency.DAILY, time(2, 30), datetime(2026, 3, 28, 12, tzinfo=UTC), PARIS)

    assert at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert at.astimezone(PARIS).strftime("%H:%M %Z") == "03:30 CEST"
    sub = _sub(Frequency.DAILY, time(2, 30), datetime(2026, 3, 27, tzinfo=UTC))
    assert [d.due_at for d in due_digests(sub, datetime(2026, 3, 29, 2, tzinfo=UTC), PARIS)] == [
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
        at,
    ]


def test_due_digests_stay_due_for_the_grace_window_only():
    sub = _sub(Frequency.DAILY, time(9), datetime(2026, 11, 1, tzinfo=UTC))
    now = datetime(2026, 11, 5, 10, tzinfo=UTC)  # 11:00 in Paris

    due = due_digests(sub, now, PARIS)

    # 09:00 on the 4th (25 h ago) and on the 5th are within 36 h; the 2nd and 3rd are not.
    assert [d.due_at for d in due] == [datetime(2026, 11, 4, 8, tzinfo=UTC), datetime(2026, 11, 5, 8, tzinfo=UTC)]
    assert [d.period.first_day for d in due] == [date(2026, 11, 3), date(2026, 11, 4)]
    assert due_digests(sub, datetime(2026, 11, 5, 7, 59, tzinfo=UTC), PARIS)[-1].due_at.day == 4


def test_nothing_is_due_from_before_the_subscription():
    sub = _sub(Frequency.WEEKLY, time(9), datetime(2026, 11, 2, 8, 30, tzinfo=UTC))  # Monday 09:30

    assert due_digests(sub, datetime(2026, 11, 8, tzinfo=UTC), PARIS) == []
    [due] = due_digests(sub, datetime(2026, 11, 9, 8, tzinfo=UTC), PARIS)
    assert due.period.first_day == date(2026, 11, 2)
