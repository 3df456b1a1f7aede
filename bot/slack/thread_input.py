"""A thread's first message, used as the input when a request in a thread gives no text."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient


class ThreadInputUnavailable(Exception):
    """The thread's first message could not be read; the message is fit to show a user."""


async def thread_parent_text(client: AsyncWebClient, channel_id: str, thread_ts: str) -> str:
    """The text of the message that started the thread `thread_ts` in `channel_id`."""
    try:
        replies = await client.conversations_replies(channel=channel_id, ts=thread_ts, limit=1)
    except SlackApiError as err:
        code = err.response.get("error", "unknown_error")
        raise ThreadInputUnavailable(
            f"I couldn't read this thread's first message (Slack said `{code}`); "
            "give me the text after the command instead."
        ) from err
    messages = replies.get("messages") or []
    if not messages or messages[0].get("ts") != thread_ts:
        raise ThreadInputUnavailable("I couldn't find this thread's first message; give me the text instead.")
    return messages[0].get("text") or ""
