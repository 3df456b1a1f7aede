"""Once-only Slack deliveries: each is claimed by its idempotency key before its listener does any work.

A retried or duplicated delivery (Slack's retries, a proxy's resend, two replicas behind a load
balancer) finds its key taken and is acknowledged with nothing else done: no model call, no reply,
no charge. The key is the listeners' request key, so a delivery and its ledger rows share it.
Slack's X-Slack-Retry-Num / X-Slack-Retry-Reason headers are only logged: the key decides.

Most deliveries are claimed before their listener runs (and so before the ack): a claim that fails
answers HTTP 500, and Slack retries an event later. The commands of ACKED_FIRST, whose listeners
ack before doing anything (the model calls' hot path), are claimed while the listener acks: the
claim's round trip stays off the ack, and the listener's `await ack()` returns only once the claim
is won; for a duplicate it raises DuplicateDelivery, which ends the listener quietly. A listener
that writes before it acks (the /frugal admin subcommands) must not be in ACKED_FIRST.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.listener.async_listener_completion_handler import AsyncListenerCompletionHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255
# Slash commands whose listeners ack before any work (tests/slack/test_once.py checks each one).
ACKED_FIRST = frozenset({"/rewrite", "/classify"})
# Interactions that carry a trigger_id and start work; options loads and view_closed are answered every time.
_CLAIMED_INTERACTIONS = frozenset({"block_actions", "message_action", "shortcut", "view_submission"})
_CONTEXT_KEY = "frugal_delivery_claim"


class DeliveryClaims(Protocol):
    """Where claims are kept (bot.infra.db.deliveries.SqlDeliveries)."""

    async def claim(self, key: str, *, team_id: str | None, kind: str) -> int | None:
        """The claim's number when this caller may process the delivery, None when it is taken."""
        ...

    async def finish(self, key: str) -> None:
        """Record that the delivery was processed."""
        ...


class DuplicateDelivery(Exception):
    """The delivery was already claimed (a retry or a duplicate): its listener stops, with nothing done."""


@dataclass(frozen=True)
class Delivery:
    """What identifies one Slack delivery: its idempotency key and what kind of request it is."""

    key: str
    kind: str


def delivery_of(body: dict[str, Any]) -> Delivery | None:
    """The delivery's key and kind, or None for requests not deduplicated (handshakes, options loads)."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return _delivery(f"event:{body['event_id']}", "event")
    if body.get("command") and body.get("trigger_id"):
        return _delivery(f"command:{body['trigger_id']}", "command")
    kind = body.get("type")
    if kind not in _CLAIMED_INTERACTIONS:
        return None
    if body.get("trigger_id"):
        return _delivery(f"action:{body['trigger_id']}", kind)
    if kind == "block_actions":
        return _block_action_delivery(body)
    return None


def _block_action_delivery(body: dict[str, Any]) -> Delivery | None:
    # Without a trigger_id, the click is identified by where it happened, which button, and when.
    actions = body.get("actions") or [{}]
    container = body.get("container") or {}
    where = container.get("message_ts") or container.get("view_id")
    action_id, action_ts = actions[0].get("action_id"), actions[0].get("action_ts")
    if not (where and action_id and action_ts):
        return None
    return _delivery(f"action:{where}:{action_id}:{action_ts}", "block_actions")


def _delivery(key: str, kind: str) -> Delivery:
    if len(key) > MAX_KEY_LENGTH:
        prefix = key.split(":", 1)[0]
        key = f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return Delivery(key=key, kind=kind)


def install_once_only(app: AsyncApp, claims: DeliveryClaims) -> None:
    """Make `app` claim every delivery before its listener's work, and mark it done after the listener."""

    async def claim_delivery(
        body: dict[str, Any], context: AsyncBoltContext, request: AsyncBoltRequest, next  # noqa: A002 (Bolt's name)
    ) -> BoltResponse | None:
        delivery = delivery_of(body)
        if delivery is None:
            await next()
            return None
        claim = _Claim(claims, delivery, context.team_id, request)
        context[_CONTEXT_KEY] = claim
        if body.get("command") in ACKED_FIRST and not app.process_before_response:
            # The listener runs in a task of its own and acks there; the claim runs meanwhile.
            context["ack"] = _AckThenClaim(claim)
            await next()
            return None
        # A database error propagates: Bolt's error handler tells the user, and Slack may retry an event.
        try:
            await claim.won()
        except DuplicateDelivery:
            # Not calling next(): Bolt sends this response (the ack) and runs no listener.
            return BoltResponse(status=200, body="")
        await next()
        return None

    app.middleware(claim_delivery)
    # Bolt calls its completion handler once a listener has returned (or raised), after the ack.
    app.listener_runner.listener_completion_handler = _FinishDelivery(claims)


class _Claim:
    """One delivery's claim, started at once; won() waits for it and raises DuplicateDelivery when it is taken.

    It holds no reference to the request's context (the context holds it): no reference cycle, so a
    finished request is freed at once instead of waiting for the garbage collector.
    """

    def __init__(self, claims: DeliveryClaims, delivery: Delivery, team_id: str | None, request: AsyncBoltRequest) -> None:
        self.delivery = delivery
        self.held = False
        self._retry = (_header(request, "x-slack-retry-num"), _header(request, "x-slack-retry-reason"))
        self._task = asyncio.create_task(claims.claim(delivery.key, team_id=team_id, kind=delivery.kind))
        # Retrieved here too, so a claim nobody waits for (a listener that failed first) logs no warning.
        self._task.add_done_callback(_retrieve)

    async def won(self) -> None:
        """Return once this process holds the claim (the listener may work); raise DuplicateDelivery if not."""
        if await self._task is None:
            log.info("duplicate %s delivery dropped (Slack retry %s, reason %s)", self.delivery.kind, *self._retry)
            raise DuplicateDelivery(self.delivery.key)
        self.held = True


def _retrieve(task: asyncio.Task[int | None]) -> None:
    if not task.cancelled():
        task.exception()


class _AckThenClaim(AsyncAck):
    """ack() that sets the response at once (Bolt sends it), then waits for the delivery's claim before returning."""

    _response: BoltResponse | None = None

    def __init__(self, claim: _Claim) -> None:
        super().__init__()
        self._claim = claim

    @property  # type: ignore[override]
    def response(self) -> BoltResponse | None:
        """The acknowledgement Bolt sends to Slack."""
        return self._response

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        # Bolt's listener runner resets the response to None when a listener raises after acking (here:
        # a lost or failed claim); the ack was given and Slack must still get it, or it shows an error.
        if value is not None or self._response is None:
            self._response = value

    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        """Acknowledge; return when the claim is won, raise DuplicateDelivery when it is not."""
        response = await super().__call__(*args, **kwargs)
        await self._claim.won()
        return response


class _FinishDelivery(AsyncListenerCompletionHandler):
    """Marks the request's delivery done once its listener has finished."""

    def __init__(self, claims: DeliveryClaims) -> None:
        self._claims = claims

    async def handle(self, request: AsyncBoltRequest, response: BoltResponse | None) -> None:
        """Mark the delivery claimed for this request done."""
        claim = request.context.get(_CONTEXT_KEY)
        if not isinstance(claim, _Claim) or not claim.held:
            return
        try:
            await self._claims.finish(claim.delivery.key)
        except (SQLAlchemyError, OSError) as err:
            # The user already has the answer; only a Slack retry after the lease could run the request again.
            log.warning("could not mark a Slack delivery done (%s); a retry after its lease would run again",
                        type(err).__name__)


def _header(request: AsyncBoltRequest, name: str) -> str:
    return (request.headers.get(name) or ["-"])[0]
