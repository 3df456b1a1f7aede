"""Per-person budgets and warn limits, enforced end to end: signed /rewrite commands against the real quota engine."""

from __future__ import annotations

from tests.bolt_tasks import settle_listeners

ADMIN = "UADMIN1"
ANA, BEN = "U0ANA1", "U0BEN1"
C1, C2 = "C0001", "C0002"
REFUSAL = "has no room for this request"


async def _quota(frugal, text: str) -> str:
    response, _ = await frugal.command("/frugal", f"quota {text}", user_id=ADMIN, channel_id=C1)
    assert response.status == 200
    body = await response.json()
    assert body["text"].startswith("Done:"), body["text"]
    return body["text"]


async def _rewrite(frugal, fake_slack, user: str, channel: str, text: str = "make this nicer") -> str:
    response, name = await frugal.command("/rewrite", text, user_id=user, channel_id=channel)
    assert response.status == 200
    [reply] = await fake_slack.await_calls(f"response_url:{name}", timeout=20)
    await settle_listeners()
    return reply.params["text"]


async def test_the_per_person_default_counts_each_person_in_every_channel(frugal, admins, fake_openai):
    await _quota(frugal, "set default-user 1 requests/day alert off")

    first = await _rewrite(frugal, admins, ANA, C1)
    again_elsewhere = await _rewrite(frugal, admins, ANA, C2)
    someone_else = await _rewrite(frugal, admins, BEN, C1)

    assert REFUSAL not in first and REFUSAL not in someone_else
    assert again_elsewhere.startswith(
        ":no_entry: The workspace's default per-person quota of *1 request per day* has no room"
    )
    assert "1 of 1 request used" in again_elsewhere and "Nothing was charged" in again_elsewhere
    assert len(fake_openai.requests) == 2


async def test_a_persons_own_limit_and_the_tightest_decides(frugal, admins, fake_openai):
    await _quota(frugal, "set here 3 requests/day alert off")
    await _quota(frugal, f"set <@{ANA}|ana> 1 requests/day alert off")

    assert REFUSAL not in await _rewrite(frugal, admins, ANA, C1)
    ana_refused = await _rewrite(frugal, admins, ANA, C1)
    assert ana_refused.startswith(":no_entry: Your personal quota of *1 request per day*"), ana_refused

    assert REFUSAL not in await _rewrite(frugal, admins, BEN, C1)
    assert REFUSAL not in await _rewrite(frugal, admins, BEN, C1)
    ben_refused = await _rewrite(frugal, admins, BEN, C1)
    assert ben_refused.startswith(":no_entry: This channel's quota of *3 requests per day*"), ben_refused
    assert len(fake_openai.requests) == 3


async def test_an_own_limit_replaces_the_per_person_default(frugal, admins, fake_openai):
    await _quota(frugal, "set default-user 1 requests/day alert off")
    await _quota(frugal, f"set <@{ANA}> 2 requests/day alert off")

    texts = [await _rewrite(frugal, admins, ANA, C1) for _ in range(3)]

    assert [REFUSAL in t for t in texts] == [False, False, True]
    assert texts[2].startswith(":no_entry: Your personal quota of *2 requests per day*")


async def test_a_warn_limit_never_refuses(frugal, admins, fake_openai):
    await _quota(frugal, "set here 1 requests/day warn alert off")

    texts = [await _rewrite(frugal, admins, ANA, C1) for _ in range(3)]

    assert not any(REFUSAL in t for t in texts)
    assert len(fake_openai.requests) == 3
    [use] = await frugal.container.quota.channel_quotas("T0001", C1, _now())
    assert (use.used, use.reserved) == (3, 0)  # its use is still counted


async def test_a_hard_limit_still_refuses_beside_a_warn_one(frugal, admins, fake_openai):
    await _quota(frugal, "set here 1 requests/day warn alert off")
    await _quota(frugal, "set default-user 2 requests/day alert off")

    texts = [await _rewrite(frugal, admins, ANA, C1) for _ in range(3)]

    assert [REFUSAL in t for t in texts] == [False, False, True]
    assert texts[2].startswith(":no_entry: The workspace's default per-person quota of *2 requests per day*")


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
