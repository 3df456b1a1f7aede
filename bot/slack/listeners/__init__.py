"""The listener table: every Slack entry point, registered in one place."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import blocks
from bot.slack.listeners import frugal, rewrite

Listener = Callable[..., Awaitable[None]]

# (AsyncApp method, matcher, listener) — acked at once, slow work after the ack.
LISTENERS: list[tuple[str, Any, Listener]] = [
    ("command", "/rewrite", rewrite.rewrite_command),
    ("command", "/frugal", frugal.frugal_command),
    ("action", blocks.POST_REWRITE_ACTION, rewrite.post_rewrite),
    ("action", re.compile(f"^{blocks.STYLE_ACTION_PREFIX}"), rewrite.try_style),
]


def register(app: AsyncApp) -> None:
    """Register every listener of the table on `app`."""
    for method, matcher, listener in LISTENERS:
        getattr(app, method)(matcher)(listener)
