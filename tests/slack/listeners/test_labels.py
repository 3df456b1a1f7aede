"""/frugal labels end to end: anyone may look, only admins may set or clear, bad lists change nothing."""

from __future__ import annotations

import pytest

from bot.services.classify import DEFAULT_LABELS
from bot.slack.listeners.labels import LABELS_USAGE

REFUSAL = "Only Frugal admins and workspace admins can do that."


@pytest.fixture
async def frugal(start_frugal, migrated_url):
    """Frugal with UADMIN in FRUGAL_ADMINS."""
    return await start_frugal(migrated_url, FRUGAL_ADMINS="UADMIN")


async def _say(frugal, text: str, user_id: str = "UADMIN", channel_id: str = "C1") -> str:
    response, _ = await frugal.command("/frugal", text, user_id=user_id, channel_id=channel_id)
    assert response.status == 200
    return (await response.json())["text"]


async def test_an_admin_sets_the_channels_labels(frugal):
    reply = await _say(frugal, "labels set bug, question , praise")

    assert reply == "This channel's labels are now: bug, question, praise. `/classify text` uses them."
    assert await _say(frugal, "labels", user_id="UANYONE") == "bug, question, praise"
    assert await _say(frugal, "labels", channel_id="C2") == ", ".join(DEFAULT_LABELS)


async def test_someone_who_is_not_an_admin_is_refused_and_nothing_changes(frugal, fake_slack):
    await _say(frugal, "labels set urgent, later")

    assert await _say(frugal, "labels set a, b", user_id="UPLAIN") == REFUSAL
    assert await _say(frugal, "labels clear", user_id="UPLAIN") == REFUSAL

    assert await _say(frugal, "labels") == "urgent, later"
    [lookup] = fake_slack.calls_to("users.info")  # cached for a few minutes
    assert lookup.params["user"] == "UPLAIN"


async def test_a_workspace_admin_may_set_labels(frugal, fake_slack):
    fake_slack.users["UOWNER"] = {"is_owner": True}

    reply = await _say(frugal, "labels set now, soon", user_id="UOWNER")

    assert reply.startswith("This channel's labels are now: now, soon.")


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ("only-one", "Give at least 2 labels to choose from (got 1)."),
        (", ".join(f"l{i}" for i in range(51)), "Give at most 50 labels (got 51)."),
        ("a, " + "y" * 101, "is 101 characters long; the limit is 100."),
        ("a, , b", "Label 2 is empty"),
        ("a, A", "The label 'A' is listed twice."),
    ],
)
async def test_a_bad_list_gets_a_clear_message_and_changes_nothing(frugal, labels, problem):
    await _say(frugal, "labels set urgent, later")

    reply = await _say(frugal, f"labels set {labels}")

    assert problem in reply and "Nothing was changed." in reply and LABELS_USAGE in reply
    assert await _say(frugal, "labels") == "urgent, later"


async def test_clear_goes_back_to_the_default_set(frugal):
    await _say(frugal, "labels set urgent, later")

    reply = await _say(frugal, "labels clear")

    assert (
        reply
        == "This channel's labels were removed. `/classify` uses the default set: " + ", ".join(DEFAULT_LABELS) + "."
    )
    assert await _say(frugal, "labels") == ", ".join(DEFAULT_LABELS)
    assert (await _say(frugal, "labels clear")).startswith("This channel had no labels of its own.")


@pytest.mark.parametrize("text", ["labels set", "labels sett a, b", "labels show extra"])
async def test_anything_else_gets_the_usage(frugal, text):
    assert await _say(frugal, text) == LABELS_USAGE


async def test_the_bracket_form_sets_the_same_labels(frugal):
    reply = await _say(frugal, "labels set [x, y]")

    assert reply == "This channel's labels are now: x, y. `/classify text` uses them."
    assert await _say(frugal, "labels") == "x, y"


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ("[x, y", "The label list has no closing `]`."),
        ("[x, y] z", "Nothing may follow the label list's closing `]`."),
        ("x, y]", "has a `]` but no opening `[`."),
        ("bug, bu\u200bg", "The label 'bug' is listed twice."),
        ("\u200b, \u2060x", "Label 1 is empty"),
    ],
)
async def test_stray_brackets_and_invisible_duplicates_change_nothing(frugal, labels, problem):
    await _say(frugal, "labels set urgent, later")

    reply = await _say(frugal, f"labels set {labels}")

    assert problem in reply and "Nothing was changed." in reply
    assert await _say(frugal, "labels") == "urgent, later"


async def test_labels_are_kept_as_typed_and_shown_without_double_escaping(frugal):
    # Slack sends "Q&A" as "Q&amp;A"; the label is "Q&A", shown as Slack shows "Q&A".
    reply = await _say(frugal, "labels set Q&amp;A, &lt;b&gt;")

    assert reply == "This channel's labels are now: Q&amp;A, &lt;b&gt;. `/classify text` uses them."
    assert await _say(frugal, "labels") == "Q&amp;A, &lt;b&gt;"
