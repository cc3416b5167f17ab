"""What a request handler sees: the broker, the request header, and who is asking."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from klamm.protocol.build import build
from klamm.protocol.messages import RequestHeader, response_type

if TYPE_CHECKING:
    from klamm.broker.auth import SaslAuthenticator
    from klamm.broker.node import Broker


class InOrder:
    """Keeps the side effects of a connection's requests in arrival order when a handler must
    await before making them (produce validating a large batch in a worker thread).

    Handlers normally act before their first await, which the connection starts in arrival
    order. One that awaits first takes a turn (`take`): it gets the turn before it, to await
    before acting, and calls `done` with its own when finished; while any turn is open, later
    handlers take turns too instead of acting at once. Kafka gets the same order by serving one
    request per connection at a time (SocketServer mutes the channel).
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: asyncio.Future[None] | None = None

    @property
    def busy(self) -> bool:
        return self._last is not None and not self._last.done()

    def take(self) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """(the open turn before this one or None, this one's turn)."""
        before = self._last if self.busy else None
        self._last = asyncio.get_running_loop().create_future()
        return before, self._last

    @staticmethod
    def done(turn: asyncio.Future[None]) -> None:
        if not turn.done():  # a waiter cancelled while awaiting it cancels it too
            turn.set_result(None)


@dataclass(slots=True)
class Session:
    """Per-connection state that outlives one request (authentication, client identity)."""

    peer: str
    client_software: str | None = None
    principal: str | None = None
    authenticated: bool = True
    # The SASL exchange on a SASL_* listener (None on PLAINTEXT/SSL): until it completes only
    # ApiVersions, SaslHandshake and SaslAuthenticate are served (klamm.broker.auth).
    sasl: SaslAuthenticator | None = None
    produce_order: InOrder = field(default_factory=InOrder)  # see InOrder; the produce handler's


class CloseConnection:
    """What a handler returns when Kafka closes the connection instead of answering: a failed
    Produce with acks=0. Its client expects no response, so the close is how it learns that
    something went wrong (it reconnects and refreshes its metadata); Kafka's KafkaApis does the
    same (`closeConnection` when an acks=0 produce has any error). Earlier responses on the
    connection still go out first."""

    __slots__ = ()


CLOSE_CONNECTION = CloseConnection()


@dataclass(slots=True)
class RequestContext:
    broker: Broker
    header: RequestHeader
    session: Session

    @property
    def version(self) -> int:
        return self.header.api_version

    def response(self, /, **fields: Any) -> Any:
        """The response entity for this request's API and version, from plain values."""
        cls = response_type(self.header.api_key, self.header.api_version)
        return build(cls, **fields)
