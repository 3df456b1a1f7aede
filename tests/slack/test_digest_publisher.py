"""Posting a digest through the real slack_sdk client to the fake Slack: the message, then the chart's three steps."""

from __future__ import annotations

import json

import pytest

from bot.services.digest import PublishFailed
from bot.slack.digest_chart import daily_cost_chart
from bot.slack.digest_publisher import SlackDigestPublisher, static_token
from tests.conftest import BOT_TOKEN
from tests.slack.digest_sample import sample_digest


async def test_the_chart_goes_through_the_three_step_upload_into_the_thread(fake_slack):
    fake_slack.users["U1"] = {"profile": {"display_name": "Ada"}}
    publisher = SlackDigestPublisher(fake_slack.api_url, static_token(BOT_TOKEN))
    digest = sample_digest()
    png = daily_cost_chart(digest)

    ts = await publisher.post_digest(digest, chart=True)
    await publisher.post_chart(digest, png, ts)

    [post] = fake_slack.calls_to("chat.postMessage")
    assert post.token == BOT_TOKEN and post.params["channel"] == "C1"
    blocks = post.params["blocks"]
    assert "1. Ada — $0.90" in (blocks if isinstance(blocks, str) else json.dumps(blocks, ensure_ascii=False))
    # 1: ask for an upload URL, 2: send the bytes there, 3: complete the upload into the channel's thread.
    [get_url] = fake_slack.calls_to("files.getUploadURLExternal")
    assert get_url.params["filename"] == "frugal-cost-2026-10-26_2026-11-01.png"
    assert int(get_url.params["length"]) == len(png)
    [(file_id, uploaded)] = fake_slack.uploads.items()
    assert uploaded == png and uploaded.startswith(b"\x89PNG\r\n\x1a\n")
    [complete] = fake_slack.calls_to("files.completeUploadExternal")
    files = complete.params["files"]
    files = json.loads(files) if isinstance(files, str) else files
    assert files == [{"id": file_id, "title": "Daily cost by model"}]
    assert (complete.params["channel_id"], complete.params["thread_ts"]) == ("C1", ts)
    methods = [c.method for c in fake_slack.calls if c.method.startswith(("chat.", "files."))]
    assert methods == ["chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal"]


@pytest.mark.parametrize(
    ("error", "retryable", "says"),
    [
        ("not_in_channel", False, "/invite @Frugal"),
        ("invalid_auth", False, "SLACK_BOT_TOKEN"),
        ("internal_error", True, "internal_error"),
    ],
)
async def test_slack_refusals_become_publish_failed_in_plain_words(fake_slack, error, retryable, says):
    fake_slack.fail("chat.postMessage", status=200, headers={}, body={"ok": False, "error": error})
    publisher = SlackDigestPublisher(fake_slack.api_url, static_token(BOT_TOKEN))

    with pytest.raises(PublishFailed) as caught:
        await publisher.post_digest(sample_digest(), chart=False)

    assert (caught.value.code, caught.value.retryable) == (error, retryable)
    assert says in str(caught.value)


async def test_a_workspace_without_a_token_is_not_installed(fake_slack):
    publisher = SlackDigestPublisher(fake_slack.api_url, static_token(None))

    with pytest.raises(PublishFailed) as caught:
        await publisher.post_digest(sample_digest(), chart=False)

    assert caught.value.code == "not_installed" and not caught.value.retryable
    assert fake_slack.calls == []
