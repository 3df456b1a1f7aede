"""The `frugal` subcommands, one module each, registered in bot.cli's table."""

from __future__ import annotations

import re

# What `--channel C` accepts: a public (C), private (G) or direct-message (D) channel ID.
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")


def is_channel_id(value: str) -> bool:
    """True for a Slack channel ID such as C0123ABCD."""
    return _CHANNEL_ID.match(value) is not None
