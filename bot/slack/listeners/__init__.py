"""The listener table: every Slack entry point, registered in one place."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import blocks, oauth
from bot.slack.listeners import classify, frugal, home, mention, rewrite, shortcuts, usage

Listener = Callable[..., Awaitable[None]]

# (AsyncApp method, matcher, listener) — acked at once, slow work after the ack.
LISTENERS: list[tuple[str, Any, Listener]] = [
    ("command", "/rewrite", rewrite.rewrite_command),
    ("command", "/frugal", frugal.frugal_command),
    ("command", "/classify", classify.classify_command),
    ("command", "/usage", usage.usage_command),
    ("action", blocks.POST_REWRITE_ACTION, rewrite.post_rewrite),
    ("action", re.compile(f"^{blocks.STYLE_ACTION_PREFIX}"), rewrite.try_style),
    ("event", "tokens_revoked", oauth.on_tokens_revoked),
    ("event", "app_uninstalled", oauth.on_app_uninstalled),
    ("event", "app_mention", mention.on_mention),
    ("message_shortcut", shortcuts.REWRITE_SHORTCUT, shortcuts.rewrite_message),
    ("message_shortcut", shortcuts.CLASSIFY_SHORTCUT, shortcuts.classify_message),
    ("action", blocks.POST_IN_THREAD_ACTION, shortcuts.post_in_thread),
    ("event", "app_home_opened", home.on_home_opened),
]


def register(app: AsyncApp) -> None:
    """Register every listener of the table on `app`."""
    for method, matcher, listener in LISTENERS:
        getattr(app, method)(matcher)(listener)
