"""Quota alerts end to end: signed /rewrite commands cross thresholds; the channel (or the person) and the admins are told once."""

from __future__ import annotations

import pytest

from tests.bolt_tasks import settle_listeners

ADMIN = "UADMIN1"
ANA, BEN = "U0ANA1", "U0BEN1"
C1, C2 = "C0001", "C0002"
REFUSAL = "has no room for this request"


@pytest.fixture
async def frugal(start_frugal, migrated_url, fake_slack):
    """Frugal with one configured admin, who is DMed the alerts."""
    return await start_frugal(migrated_url, FRUGAL_ADMINS=ADMIN)


async def _quota(frugal, text: str) -> None:
    response, _ = await frugal.command("/frugal", f"quota {text}", user_id=ADMIN, channel_id=C1)
    assert (await response.json())["text"].startswith("Done:")


async def _rewrite(frugal, fake_slack, user: str, channel: str = C1) -> str:
    response, name = await frugal.command("/rewrite", "make this nicer", user_id=user, channel_id=channel)
    assert response.status == 200
    [reply] = await fake_slack.await_calls(f"response_url:{name}", timeout=20)
    await settle_listeners()
    await frugal.container.alerts.aclose()  # the alerts still being sent
    return reply.params["text"]


def _posts(fake_slack, channel: str) -> list[str]:
    return [
        c.params["text"] for c in fake_slack.calls_to("chat.postMessage", lambda c: c.params.get("channel") == channel)
    ]


async def test_a_channel_is_told_at_each_threshold_once(frugal, fake_slack):
    fake_slack.users[ANA] = {"profile": {"display_name": "Ana <!channel> & co"}}
    await _quota(frugal, "set here 5 requests/day alert 40,80")

    await _rewrite(frugal, fake_slack, ANA)
    assert _posts(fake_slack, C1) == [] and _posts(fake_slack, ADMIN) == []
    await _rewrite(frugal, fake_slack, ANA)
    [at_40] = _posts(fake_slack, C1)
    assert at_40.startswith(":bell: *Quota alert:* This channel's quota of *5 requests per day* has reached 40 %: ")
    assert "2 of 5 requests used. It resets <!date^" in at_40
    # The top user is named, escaped, and the name cannot ping anyone.
    assert "Most used by Ana &lt;!channel&gt; &amp; co (2)." in at_40
    assert "<!channel>" not in at_40 and "<!here>" not in at_40
    [to_admin] = _posts(fake_slack, ADMIN)
    assert to_admin.startswith(f":bell: *Quota alert:* <#{C1}>'s quota of *5 requests per day* has reached 40 %")

    for _ in range(3):
        await _rewrite(frugal, fake_slack, BEN)
    assert (await _rewrite(frugal, fake_slack, BEN)).startswith(":no_entry:")  # full: no 100 % alert was asked for
    texts = _posts(fake_slack, C1)
    assert len(texts) == 2 and "has reached 80 %: 4 of 5 requests used" in texts[1]
    assert "Most used by" in texts[1] and "(2)" in texts[1]
    assert len(_posts(fake_slack, ADMIN)) == 2


async def test_the_default_thresholds_and_a_full_limit(frugal, fake_slack):
    await _quota(frugal, "set here 2 requests/day")

    await _rewrite(frugal, fake_slack, ANA)
    await _rewrite(frugal, fake_slack, ANA)  # 100 %: 80 % and 100 % reached together, one message says 100 %
    refused = await _rewrite(frugal, fake_slack, ANA)

    assert REFUSAL in refused or refused.startswith(":no_entry:")
    [full] = _posts(fake_slack, C1)
    assert "has reached 100 %: 2 of 2 requests used" in full
    assert "Requests that do not fit are refused until then." in full
    assert len(_posts(fake_slack, ADMIN)) == 1


async def test_alert_off_sends_nothing(frugal, fake_slack):
    await _quota(frugal, "set here 1 requests/day alert off")

    await _rewrite(frugal, fake_slack, ANA)
    await _rewrite(frugal, fake_slack, ANA)

    assert fake_slack.calls_to("chat.postMessage") == []


async def test_a_persons_limit_alerts_them_by_dm(frugal, fake_slack):
    await _quota(frugal, f"set <@{ANA}> 2 requests/day warn alert 50")

    await _rewrite(frugal, fake_slack, ANA, C2)
    for _ in range(2):
        assert not (await _rewrite(frugal, fake_slack, ANA, C2)).startswith(":no_entry:")  # warn never refuses

    [dm] = _posts(fake_slack, ANA)
    assert dm.startswith(":bell: *Quota alert:* Your personal quota of *2 requests per day* has reached 50 %: 1 of 2")
    assert "It only warns: requests are still answered." in dm and f"Most of it in <#{C2}> (1)." in dm
    [to_admin] = _posts(fake_slack, ADMIN)
    assert to_admin.startswith(f":bell: *Quota alert:* <@{ANA}>'s personal quota")
    assert _posts(fake_slack, C2) == []


async def test_slack_failing_never_fails_the_request(frugal, fake_slack):
    await _quota(frugal, "set here 1 requests/day")
    fake_slack.fail("chat.postMessage", status=500, body={"ok": False, "error": "internal_error"}, times=10)

    reply = await _rewrite(frugal, fake_slack, ANA)

    assert not reply.startswith(":no_entry:") and "make this nicer" in reply
    assert fake_slack.calls_to("chat.postMessage")  # it was tried
