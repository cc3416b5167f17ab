"""One client connection: bytes in, frames decoded, handlers run, responses out in order.

Reads use `asyncio.BufferedProtocol` into a reused buffer and parse every complete frame in one
callback (research/performance.md B3: 5x less CPU per byte than `Protocol`, 6-10x more requests
than `readexactly`). Requests are started in arrival order, so everything a handler does before
its first `await` (appending a produce, say) happens in request order. Responses are written in
request order as they complete: a long-poll Fetch holds back later responses on its connection,
exactly as in Kafka, without holding back their processing.

Backpressure: what a connection costs stays bounded however slowly its peer reads. Kafka serves
one request at a time per connection (SocketServer mutes a channel from the moment a request is
received until its response is sent); we pipeline, but decoded frames wait in a backlog and are
started in bursts of `_BURST`, one burst per event-loop turn, and only while the transport's
write buffer is under its high-water mark (asyncio's `pause_writing` / `resume_writing`) and
fewer than `_MAX_PENDING` requests are unanswered. Between bursts the requests just started run
to their first await: a Fetch with data has built its response, and writing it pushes back
before many more are started. Reading stops while the backlog is not empty, so the backlog holds
at most the frames one read completed. A peer that pipelines Fetches and never reads thus costs
the high-water mark plus about two bursts of responses, not one response per request it sends.

Bad input never takes the broker down: a frame that cannot be decoded or an API we do not serve
is logged with the peer's address and the connection is closed (Kafka does the same: it cannot
answer a request it cannot parse), except ApiVersions, which is answered per KIP-511.

On a SASL_* listener the connection starts unauthenticated (`session.sasl`, see
klamm.broker.auth.authenticator): each frame's API key is checked before its body is decoded,
tokens of a SaslHandshake v0 exchange arrive as bare frames and are answered the same way, and
a failed exchange closes the connection right after its error response is written.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING, Any

from klamm.broker.auth import AuthenticationFailed, SaslAuthenticator
from klamm.broker.context import RequestContext, Session
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ProtocolError, UnsupportedApi
from klamm.protocol.framing import FrameDecoder
from klamm.protocol.framing import frame as length_prefixed
from klamm.protocol.messages import (
    api_versions_error_response,
    decode_request,
    encode_response,
    peek_header,
)

if TYPE_CHECKING:
    from klamm.broker.node import Broker

log = logging.getLogger("klamm.broker.connection")

# Kafka's sasl.server.max.receive.size: the largest frame accepted before a client has
# authenticated, so an anonymous peer cannot make the broker buffer 100 MiB.
_MAX_UNAUTHENTICATED_FRAME = 512 * 1024
# Size of the reused receive buffer: large enough that a big Produce arrives in few callbacks.
_RECV_BUFFER = 256 * 1024
# Requests started per event-loop turn. One 256 KiB read can hold 2,800 Fetch frames of 93 bytes,
# each asking for 1 MiB: started all at once, they would build all their responses before the
# first is written and the write buffer can push back. 16 is the pipelining depth of our
# performance research and more than clients keep in flight (Java and kafka-python: 5); it is
# not a cap on requests in flight, so produce requests waiting for an fsync do not stop the next.
_BURST = 16
# Stop starting requests when this many are unanswered on one connection (a long-poll Fetch at
# the head holds back the responses behind it), so a client that pipelines without bound cannot
# make the broker hold its requests without bound.
_MAX_PENDING = 1000


class _Slot:
    """A place in the response order; `data` is None until the response is ready."""

    __slots__ = ("data", "done")

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.done = False


class KafkaConnection(asyncio.BufferedProtocol):
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._max_request = broker.config.max_request_bytes
        self._decoder = FrameDecoder(self._max_request)
        self._buffer = bytearray(_RECV_BUFFER)
        self._transport: asyncio.Transport | None = None
        self._pending: collections.deque[_Slot] = collections.deque()  # started, in order
        self._backlog: collections.deque[bytes] = collections.deque()  # read, not yet started
        self._tasks: set[asyncio.Task[Any]] = set()
        self._burst_scheduled = False  # _next_burst is due on the next event-loop turn
        self._write_paused = False  # the transport's write buffer is over its high-water mark
        self._read_paused = False
        self._closed = False
        self._close_scheduled = False  # a failed login: closing after a delay
        self.session = Session(peer="?")

    # --- asyncio.BufferedProtocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.session.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self._broker.connections.add(self)
        credentials = self._broker.credentials
        if credentials is not None:  # a SASL_* listener: nothing is served before a login
            self.session.authenticated = False
            self.session.sasl = SaslAuthenticator(self._broker.config.sasl_mechanisms, credentials)
            self._decoder.max_frame_bytes = _MAX_UNAUTHENTICATED_FRAME

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._buffer)

    def buffer_updated(self, nbytes: int) -> None:
        if self.session.authenticated and self._decoder.max_frame_bytes < self._max_request:
            self._decoder.max_frame_bytes = self._max_request  # logged in: full-size requests
        try:
            frames = self._decoder.feed(memoryview(self._buffer)[:nbytes])
        except ProtocolError as exc:
            self._abort(f"unreadable frame: {exc}")
            return
        self._backlog.extend(frames)
        self._dispatch()

    def pause_writing(self) -> None:
        # The peer reads slower than we answer: start nothing new until the buffer drains.
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._dispatch()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._broker.connections.discard(self)
        for task in self._tasks:
            task.cancel()
        # Let go now of what was held for this peer (responses waiting their turn, frames not
        # started, the transport), not when this object goes: a scheduled burst or a close after
        # a failed login keeps it alive a little longer.
        self._pending.clear()
        self._backlog.clear()
        self._transport = None

    def buffered_bytes(self) -> int:
        """Response bytes held for the peer: finished responses waiting behind an unfinished one
        plus the transport's write buffer. Backpressure keeps this bounded."""
        held = sum(len(slot.data) for slot in self._pending if slot.data is not None)
        transport = self._transport
        return held + (transport.get_write_buffer_size() if transport is not None else 0)

    # --- flow control -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start up to a burst of backlog frames in order while there is room; leave the rest to
        the next turn; read only when none are left."""
        backlog = self._backlog
        started = 0
        while (
            backlog
            and not self._closed
            and not self._write_paused
            and len(self._pending) < _MAX_PENDING
        ):
            if started == _BURST:
                self._schedule_burst()
                break
            self._handle_frame(backlog.popleft())
            started += 1
        transport = self._transport
        if transport is None or self._closed:
            return
        if backlog and not self._read_paused:
            transport.pause_reading()
            self._read_paused = True
        elif not backlog and self._read_paused:
            transport.resume_reading()
            self._read_paused = False

    def _schedule_burst(self) -> None:
        """Start more of the backlog on the next event-loop turn, once the requests started so
        far have run to their first await (a Fetch with data: to its end)."""
        if self._backlog and not self._burst_scheduled and not self._closed:
            self._burst_scheduled = True
            asyncio.get_running_loop().call_soon(self._next_burst)

    def _next_burst(self) -> None:
        self._burst_scheduled = False
        self._dispatch()

    # --- requests -----------------------------------------------------------------------------

    def _handle_frame(self, frame: bytes) -> None:
        if not self.session.authenticated and not self._before_login(frame):
            return
        try:
            request = decode_request(frame)
        except UnsupportedApi as exc:
            self._unsupported(frame, exc)
            return
        except ProtocolError as exc:
            self._abort(f"malformed request: {exc}")
            return
        header = request.header
        if request.body is None:  # advertised-only versions: see protocol/api_versions.py
            self._abort(
                f"api {header.api_key} v{header.api_version} uses a message format removed in "
                "Kafka 4 (KIP-896); closing the connection, as Kafka does"
            )
            return
        self._broker.request_counts[header.api_key] += 1
        handler = self._broker.routes.get(header.api_key)
        if handler is None:
            self._unsupported(frame, UnsupportedApi(header.api_key, header.api_version))
            return
        slot = _Slot()
        self._pending.append(slot)
        ctx = RequestContext(self._broker, header, self.session)
        try:
            result = handler(ctx, request.body)
        except Exception:
            log.exception("%s: handler for api %d v%d failed", self.session.peer,
                          header.api_key, header.api_version)  # fmt: skip
            self._abort("internal error")
            return
        if asyncio.iscoroutine(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._finished(t, slot, ctx))
        else:
            self._complete(slot, ctx, result)

    def _before_login(self, frame: bytes) -> bool:
        """Gate a frame on an unauthenticated SASL connection: True if it may be served."""
        sasl = self.session.sasl
        assert sasl is not None  # only SASL connections start unauthenticated
        if sasl.failure is not None:  # failed: closing once the error response is out
            return False
        if sasl.expects_raw_token:
            self._raw_token(sasl, frame)
            return False
        try:
            api_key = peek_header(frame)[0]
        except ProtocolError as exc:
            self._abort(f"malformed request before authentication: {exc}")
            return False
        reason = sasl.check_request(api_key)
        if reason is not None:
            self._abort(f"{reason}; closing the connection, as Kafka does")
            return False
        if api_key == ApiKey.API_VERSIONS:
            sasl.api_versions_answered()
        return True

    def _raw_token(self, sasl: SaslAuthenticator, token: bytes) -> None:
        """SaslHandshake v0: a bare token in, a bare length-prefixed token out, no header."""
        try:
            reply = sasl.authenticate(token)
        except AuthenticationFailed:
            # v0 has no way to carry an error: Kafka closes the connection, and so do we.
            self._abort(f"SASL authentication failed: {sasl.failure}")
            return
        if sasl.complete:
            self.session.authenticated = True
            self.session.principal = f"User:{sasl.principal}"
            log.info("%s: authenticated as %s with %s", self.session.peer,
                     self.session.principal, sasl.mechanism)  # fmt: skip
        slot = _Slot()
        slot.data = length_prefixed(reply)
        slot.done = True
        self._pending.append(slot)
        self._flush()

    def _close_after_failed_login(self, reason: str) -> None:
        """The error response is written; close a little later, as Kafka does (KIP-306,
        connection.failed.authentication.delay.ms): it slows password guessing, and clients
        that drop data read together with the EOF (kafka-python 3.0) still see the error."""
        if self._close_scheduled:
            return
        self._close_scheduled = True
        # INFO, as Kafka logs failed authentications: a client with a wrong password retries
        # several times a second, and each attempt is the same news.
        log.info("%s: %s; closing the connection", self.session.peer, reason)
        delay = self._broker.config.failed_authentication_delay_ms / 1000
        asyncio.get_running_loop().call_later(delay, self.close)

    def _finished(self, task: asyncio.Task[Any], slot: _Slot, ctx: RequestContext) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: handler for api %d v%d failed", self.session.peer,
                      ctx.header.api_key, ctx.header.api_version, exc_info=exc)  # fmt: skip
            self._abort("internal error")
            return
        self._complete(slot, ctx, task.result())

    def _complete(self, slot: _Slot, ctx: RequestContext, body: Any) -> None:
        slot.data = None if body is None else encode_response(ctx.header, body)
        slot.done = True
        self._flush()

    def _flush(self) -> None:
        out: list[bytes] = []
        pending = self._pending
        while pending and pending[0].done:
            data = pending.popleft().data
            if data is not None:
                out.append(data)
        if out and self._transport is not None and not self._closed:
            self._transport.writelines(out)
        sasl = self.session.sasl
        if sasl is not None and sasl.failure is not None and not pending and not self._closed:
            self._close_after_failed_login(sasl.failure)
            return
        if self._backlog:  # answers made room: start what waits
            self._schedule_burst()

    def _unsupported(self, frame: bytes, exc: UnsupportedApi) -> None:
        if exc.api_key == ApiKey.API_VERSIONS:
            # KIP-511: answer in the v0 layout with our ranges so the client can downgrade.
            _, _, correlation_id = peek_header(frame)
            slot = _Slot()
            slot.data = api_versions_error_response(correlation_id, self._broker.advertised)
            slot.done = True
            self._pending.append(slot)
            self._flush()
            return
        self._abort(f"{exc} (closing the connection, as Kafka does)")

    def _abort(self, reason: str) -> None:
        if self._closed:
            return
        log.warning("%s: %s", self.session.peer, reason)
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()
