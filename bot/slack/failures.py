"""How a failed request is told to the user, in plain words."""

from __future__ import annotations

from bot.ports.completion import CompletionFailed
from bot.ports.quota import Metric, QuotaUse
from bot.services.errors import InvalidInput
from bot.services.quota import QuotaExceeded
from bot.slack.markup import defuse
from bot.slack.quota_blocks import amount, per_period, slack_date

_WHOSE = {"channel": "This channel's", "default": "The workspace's default per-channel", "user": "Your personal"}


def failure_text(err: InvalidInput | CompletionFailed) -> str:
    """The message shown when input was refused, a quota had no room, or no model could answer."""
    if isinstance(err, QuotaExceeded):
        return quota_refusal(err.use)
    # A refusal may quote what was typed: posted, it must notify nobody.
    return defuse(str(err))


def quota_refusal(use: QuotaUse) -> str:
    """Which quota refused, used / limit, when it resets (in the reader's own zone), and that nothing was charged."""
    # A per-person limit with no target is the workspace's default for each person (`default-user`).
    whose = (
        "The workspace's default per-person" if use.scope == "user" and not use.target else _WHOSE.get(use.scope, "A")
    )
    used = amount(use.metric, use.used) if use.metric is Metric.USD else f"{int(use.used):,}"
    limit = per_period(use.metric, use.limit, use.period.value)
    room = (
        "so it is used up"
        if use.remaining <= 0
        else f"with only {amount(use.metric, use.remaining)} left, less than this request may need"
    )
    return (
        f":no_entry: {whose} quota of *{limit}* has no room for this request: "
        f"{used} of {amount(use.metric, use.limit)} used, {room}. "
        f"It resets {slack_date(use.resets_at)}. Nothing was charged for this request."
    )
