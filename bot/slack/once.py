"""Once-only Slack deliveries: each is claimed by its idempotency key before its listener does any work.

A retried or duplicated delivery (Slack's retries, a proxy's resend, two replicas behind a load
balancer) finds its key taken and is acknowledged with nothing else done: no model call, no reply,
no charge. The key is the listeners' request key, so a delivery and its ledger rows share it.
Slack's X-Slack-Retry-Num / X-Slack-Retry-Reason headers are only logged: the key decides.

Two public Bolt pieces do it: a global middleware (`install_once_only`) starts the claim, and each
listener is registered wrapped by `once_only`, which marks the delivery done when it returns.
Bolt's `next()` only lets the request go on (the listener runs later, in a task of its own), so the
wrapper, not the middleware, is where a listener's end is known.

Most deliveries are claimed before their listener runs (and so before the ack): a claim that fails
answers HTTP 500, and Slack retries an event later. The commands of ACKED_FIRST, whose listeners
ack before doing anything (the model calls' hot path), are claimed while the listener acks: the
claim's round trip stays off the ack. Their listener is handed an `ack` that acknowledges at once
(Bolt's own ack, so Bolt sends it) and returns only once the claim is won; for a duplicate the
listener ends there, quietly. A listener that writes before it acks (the /frugal admin
subcommands) must not be in ACKED_FIRST.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.slack.in_flight import InFlight

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255
# Slash commands whose listeners ack before any work (tests/slack/test_once.py checks each one).
ACKED_FIRST = frozenset({"/rewrite", "/classify"})
# Interactions that carry a trigger_id and start work; options loads and view_closed are answered every time.
_CLAIMED_INTERACTIONS = frozenset({"block_actions", "message_action", "shortcut", "view_submission"})
# Where the middleware leaves the request's claim for its listener (a custom key of Bolt's context).
CLAIM_KEY = "frugal_delivery_claim"

Listener = Callable[..., Awaitable[Any]]
# Tells the user and the operator about an unexpected error (bot.slack.app's error handler).
ErrorReport = Callable[[Exception, AsyncRespond | None], Awaitable[None]]


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


class ClaimFailed(Exception):
    """The claim of a delivery acknowledged before it was decided could not be written (the cause says why)."""


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
    """Add the middleware that claims every delivery; register listeners wrapped by `once_only` to finish them."""

    async def claim_delivery(
        body: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
        next,  # noqa: A002 (Bolt's name)
    ) -> BoltResponse | None:
        delivery = delivery_of(body)
        if delivery is None:
            await next()
            return None
        claim = Claim(claims, delivery, context.team_id, request)
        context[CLAIM_KEY] = claim
        if body.get("command") in ACKED_FIRST and not app.process_before_response:
            # The listener runs in a task of its own and acks there (once_only); the claim runs meanwhile.
            claim.acked_first = True
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


def once_only(listener: Listener, report: ErrorReport, in_flight: InFlight | None = None) -> Listener:
    """`listener` for Bolt to run: acked-first commands wait for their claim after the ack; the claim is finished last.

    With `in_flight`, the listener's task is registered there while it runs (so a stop can wait for it,
    or interrupt it and tell its user).

    An exception raised after the ack goes to `report` (the app's error handler) rather than to Bolt,
    whose runner would take back the ack if it has not sent it yet (a listener failing within
    milliseconds of its ack). The wrapper asks Bolt for what `listener` asks for, plus `ack` and
    `context` (Bolt injects a listener's arguments by the names its signature gives).
    """
    signature = inspect.signature(listener)
    wanted = signature.parameters
    # Positional-or-keyword with a default: Bolt reads the names getfullargspec lists as `args`.
    extra = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
        for name in ("ack", "context", "body")
        if name not in wanted
    ]

    async def run(**injected: Any) -> None:
        context: AsyncBoltContext = injected["context"]
        given: AsyncAck = injected["ack"]
        arguments = {name: value for name, value in injected.items() if name in wanted}
        claim = context.get(CLAIM_KEY)
        claim = claim if isinstance(claim, Claim) else None
        if in_flight is not None:
            in_flight.started(context, injected.get("body"))
        try:
            if claim is not None and claim.acked_first:
                ack = _ack_then_claim(given, claim)
                if "ack" in wanted:
                    arguments["ack"] = ack
                else:  # a listener that never acks: acknowledged here, and run once the claim is won
                    await ack()
            await listener(**arguments)
        except DuplicateDelivery:
            return  # acknowledged, nothing else done; logged where the claim was lost
        except Exception as err:
            if given.response is None:
                raise  # not acknowledged: Bolt answers HTTP 500 and its error handler runs
            # Reported here, not raised to Bolt: its runner withdraws an ack it has not sent yet when a listener raises.
            await report(err.__cause__ if isinstance(err, ClaimFailed) and err.__cause__ else err, context.respond)
        finally:
            if in_flight is not None and not _cancelling():
                in_flight.returned()
            if claim is not None:
                await claim.finish()

    run.__signature__ = signature.replace(parameters=[*wanted.values(), *extra])  # type: ignore[attr-defined]
    run.__name__, run.__qualname__, run.__module__ = listener.__name__, listener.__qualname__, listener.__module__
    run.__doc__ = listener.__doc__
    return run


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _ack_then_claim(ack: AsyncAck, claim: Claim) -> Callable[..., Awaitable[BoltResponse]]:
    async def ack_then_claim(*args: Any, **kwargs: Any) -> BoltResponse:
        """Acknowledge (Bolt sends it at once); return when the claim is won, raise DuplicateDelivery when it is not."""
        response = await ack(*args, **kwargs)
        try:
            await claim.won()
        except DuplicateDelivery:
            raise
        except Exception as err:
            raise ClaimFailed(claim.delivery.kind) from err
        return response

    return ack_then_claim


class Claim:
    """One delivery's claim, started at once; won() waits for it and raises DuplicateDelivery when it is taken.

    It holds no reference to the request's context (the context holds it): no reference cycle, so a
    finished request is freed at once instead of waiting for the garbage collector.
    """

    def __init__(
        self, claims: DeliveryClaims, delivery: Delivery, team_id: str | None, request: AsyncBoltRequest
    ) -> None:
        self.delivery = delivery
        self.held = False
        self.acked_first = False
        self._claims = claims
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

    async def finish(self) -> None:
        """Mark the delivery done if this process held it; a failure is only logged."""
        if not self.held:
            return
        try:
            await self._claims.finish(self.delivery.key)
        except Exception as err:  # noqa: BLE001 (whatever the store raised, the answer is out: only logged)
            # The user already has the answer; only a Slack retry after the lease could run the request again.
            log.warning(
                "could not mark a Slack delivery done (%s); a retry after its lease would run again", type(err).__name__
            )


def _retrieve(task: asyncio.Task[int | None]) -> None:
    if not task.cancelled():
        task.exception()


def _header(request: AsyncBoltRequest, name: str) -> str:
    return (request.headers.get(name) or ["-"])[0]
