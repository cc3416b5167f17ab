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
started in bursts of `_BURST`, one burst per event-loop turn, and only while
  - the transport's write buffer is under its high-water mark (asyncio's `pause_writing` /
    `resume_writing`),
  - fewer than `_MAX_PENDING` requests are unanswered, and
  - the finished responses held back behind an unfinished one (a parked long-poll Fetch at the
    head) take fewer than `_MAX_HELD_BYTES`.
A Fetch is not started while another Fetch on the connection is unanswered (no client has two
in flight on one connection): a Fetch's response can be as large as fetch.max.bytes, and a
pipeline of parked Fetches would otherwise all build theirs at once when data arrives.
Between bursts the requests just started run to their first await: a Fetch with data has built
its response, and writing it pushes back before many more are started. Reading stops while the
backlog is not empty, so the backlog holds at most the frames one read completed. A peer that
pipelines requests and never reads thus costs the high-water mark, `_MAX_HELD_BYTES`, one
Fetch response and about two bursts of responses, not one response per request it sends.

Timeouts: a connection that moves no byte for `connections.max.idle.ms` (Kafka's, 10 min) and
has no request in progress is closed: this also ends a frame whose header promised 99 MiB and
whose bytes never came. On a SASL_* listener a connection not authenticated within
`klamm.sasl.authentication.timeout.ms` is closed, however it keeps its bytes moving.
Connections over Kafka's `max.connections` / `max.connections.per.ip` are closed as soon as they
are accepted (klamm.broker.connections, which also owns the receive buffer all connections
share).

Bad input never takes the broker down: a frame that cannot be decoded or an API we do not serve
is logged with the peer's address and the connection is closed (Kafka does the same: it cannot
answer a request it cannot parse), except ApiVersions, which is answered per KIP-511.

On a SASL_* listener the connection starts unauthenticated (`session.sasl`, see
klamm.broker.auth.authenticator): each frame's API key is checked before its body is decoded,
tokens of a SaslHandshake v0 exchange arrive as bare frames and are answered the same way, and
a failed exchange answers its error response and closes the connection only after
`connection.failed.authentication.delay.ms`, as Kafka does (KAFKA-10798), reading nothing more
meanwhile: one client then guesses at most one password per delay per connection, and the
delay is a timer, so no one else waits for it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING, Any

from klamm.broker.auth import AuthenticationFailed, SaslAuthenticator
from klamm.broker.context import CloseConnection, RequestContext, Session
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
# Stop starting requests while finished responses of this many bytes wait behind an unfinished
# one. A pipelining producer's 1,000 acks=all answers take about 100 KB, so real clients never
# meet it; a client pipelining big answers (Metadata of thousands of partitions, say) behind a
# parked Fetch is held to this, not to 1,000 answers of any size.
_MAX_HELD_BYTES = 1024 * 1024
# A failed login's answer goes out first and the close this much later: a client reading the
# answer and the EOF in one go may drop the answer (kafka-python 3.0 does, and then reports a
# lost connection instead of the authentication error). Reading stays paused meanwhile, so the
# wait serves no further guess.
CLOSE_AFTER_FAILED_LOGIN_S = 0.25


class _Slot:
    """A place in the response order; `data` is None until the response is ready."""

    __slots__ = ("close", "data", "done", "fetch")

    def __init__(self, fetch: bool = False) -> None:
        self.data: bytes | None = None
        self.done = False
        self.fetch = fetch  # a Fetch: no other Fetch starts until this one is answered
        self.close = False  # the handler asked to close the connection here (CloseConnection)


class KafkaConnection(asyncio.BufferedProtocol):
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._connections = broker.connections
        self._max_request = broker.config.max_request_bytes
        self._decoder = FrameDecoder(self._max_request)
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[_Slot] = collections.deque()  # started, in order
        self._backlog: collections.deque[bytes] = collections.deque()  # read, not yet started
        self._tasks: set[asyncio.Task[Any]] = set()
        self._burst_scheduled = False  # _next_burst is due on the next event-loop turn
        self._write_paused = False  # the transport's write buffer is over its high-water mark
        self._read_paused = False
        self._closed = False
        self._close_scheduled = False  # a failed login: answering and closing after a delay
        self._held = 0  # bytes of finished responses in `_pending`, not yet written
        self._fetching = 0  # Fetch requests started and not answered (0 or 1)
        self._last_active = 0.0  # loop time of the last byte read or response written
        self._unsent = 0  # the transport's write buffer size when the idle timer last looked
        # "idle", "login" (authentication timeout), "failed" (a failed login's delayed close)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.session = Session(peer="?")

    # --- asyncio.BufferedProtocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.session.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        refused = self._connections.admit(self, str(peer[0]) if peer else "?")
        if refused is not None:  # logged (rate-limited) by Connections
            self._closed = True
            transport.close()
            return
        config = self._broker.config
        loop = self._loop = asyncio.get_running_loop()
        self._last_active = loop.time()
        if config.connections_max_idle_ms >= 0:
            self._timers["idle"] = loop.call_later(config.connections_max_idle_ms / 1000,
                                                   self._check_idle)  # fmt: skip
        credentials = self._broker.credentials
        if credentials is not None:  # a SASL_* listener: nothing is served before a login
            self.session.authenticated = False
            self.session.sasl = SaslAuthenticator(config.sasl_mechanisms, credentials)
            self._decoder.max_frame_bytes = min(config.sasl_server_max_receive_size,
                                                self._max_request)  # fmt: skip
            if config.sasl_authentication_timeout_ms >= 0:
                self._timers["login"] = loop.call_later(
                    config.sasl_authentication_timeout_ms / 1000, self._check_authenticated
                )

    def get_buffer(self, sizehint: int) -> memoryview:
        # Shared by every connection: buffer_updated copies what it keeps before returning.
        return memoryview(self._connections.receive_buffer)

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:  # refused at accept, or closing: read nothing more
            return
        assert self._loop is not None
        self._last_active = self._loop.time()
        if self.session.authenticated and self._decoder.max_frame_bytes < self._max_request:
            self._decoder.max_frame_bytes = self._max_request  # logged in: full-size requests
        try:
            frames = self._decoder.feed(memoryview(self._connections.receive_buffer)[:nbytes])
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
        self._connections.discard(self)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        # Let go now of what was held for this peer (responses waiting their turn, frames not
        # started, the transport), not when this object goes: a scheduled burst or a close after
        # a failed login keeps it alive a little longer.
        self._pending.clear()
        self._backlog.clear()
        self._held = 0
        self._transport = None

    def buffered_bytes(self) -> int:
        """Response bytes held for the peer: finished responses waiting behind an unfinished one
        plus the transport's write buffer. Backpressure keeps this bounded."""
        transport = self._transport
        return self._held + (transport.get_write_buffer_size() if transport is not None else 0)

    # --- timeouts -----------------------------------------------------------------------------

    def _check_idle(self) -> None:
        """connections.max.idle.ms: close the connection if no byte moved for that long and no
        request is in progress (a parked Fetch, a produce waiting for its fsync); else look
        again when it could next have been idle that long."""
        loop, transport = self._loop, self._transport
        if self._closed or loop is None or transport is None:
            return
        now = loop.time()
        unsent = transport.get_write_buffer_size()
        if self._tasks or unsent < self._unsent:  # working for the peer, or it is reading
            self._last_active = now
        self._unsent = unsent
        idle_ms = self._broker.config.connections_max_idle_ms
        wake = self._last_active + idle_ms / 1000
        if now >= wake:
            # INFO: closing idle connections is routine (Kafka logs it at DEBUG).
            log.info("%s: closing the connection, idle for %d ms (connections.max.idle.ms)",
                     self.session.peer, idle_ms)  # fmt: skip
            self._closed = True
            transport.abort()  # nothing to deliver: whatever is unsent, the peer is not reading
            return
        self._timers["idle"] = loop.call_later(wake - now, self._check_idle)

    def _check_authenticated(self) -> None:
        if self._closed or self.session.authenticated or self._close_scheduled:
            return
        timeout = self._broker.config.sasl_authentication_timeout_ms
        self._abort(
            f"not authenticated within {timeout} ms (klamm.sasl.authentication.timeout.ms)",
            level=logging.INFO,
        )

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
            and self._held < _MAX_HELD_BYTES
        ):
            if self._fetching and _api_key(backlog[0]) == ApiKey.FETCH:
                break  # started again when the Fetch in flight is answered (_write_ready)
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
        except Exception as exc:
            api_key, api_version, _ = peek_header(frame)
            self._failed("decoding", api_key, api_version, exc)
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
        fetch = header.api_key == ApiKey.FETCH
        slot = _Slot(fetch)
        self._fetching += fetch
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
        if sasl.check_request(api_key) is not None:  # failed: no response, a delayed close
            self._write_ready()
            return False
        if api_key == ApiKey.API_VERSIONS:
            sasl.api_versions_answered()
        return True

    def _raw_token(self, sasl: SaslAuthenticator, token: bytes) -> None:
        """SaslHandshake v0: a bare token in, a bare length-prefixed token out, no header."""
        try:
            reply = sasl.authenticate(token)
        except AuthenticationFailed:
            # v0 has no way to carry an error: Kafka closes the connection (after the delay),
            # and so do we.
            self._write_ready()
            return
        if sasl.complete:
            self.session.authenticated = True
            self.session.principal = f"User:{sasl.principal}"
            log.info("%s: authenticated as %s with %s", self.session.peer,
                     self.session.principal, sasl.mechanism)  # fmt: skip
        slot = _Slot()
        self._pending.append(slot)
        self._finish(slot, length_prefixed(reply))

    def _fail_login(self, out: list[bytes], reason: str) -> None:
        """Answer a failed login (`out`: its error response, if the protocol has one) after
        connection.failed.authentication.delay.ms, as Kafka does (KIP-306, KAFKA-10798): it
        slows password guessing to one guess per delay per connection, and a timer costs no one
        else anything. The close follows CLOSE_AFTER_FAILED_LOGIN_S later: kafka-python 3.0
        drops an answer it reads together with the EOF, and then reports a lost connection
        instead of the authentication error."""
        if self._close_scheduled:
            return
        self._close_scheduled = True
        # INFO, as Kafka logs failed authentications: a client with a wrong password retries
        # several times a second, and each attempt is the same news.
        log.info("%s: %s; closing the connection", self.session.peer, reason)
        transport = self._transport
        if transport is not None and not self._read_paused:  # nothing more is served
            transport.pause_reading()
            self._read_paused = True
        self._backlog.clear()
        delay = self._broker.config.failed_authentication_delay_ms / 1000
        assert self._loop is not None
        self._timers["failed"] = self._loop.call_later(delay, self._answer_and_close, out)

    def _answer_and_close(self, out: list[bytes]) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        if not out:
            self.close()
            return
        transport.writelines(out)
        assert self._loop is not None
        self._timers["failed"] = self._loop.call_later(CLOSE_AFTER_FAILED_LOGIN_S, self.close)

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
        if isinstance(body, CloseConnection):
            slot.close = True
            body = None
        header = ctx.header
        try:
            data = None if body is None else encode_response(header, body)
        except Exception as exc:
            self._failed("encoding the response to", header.api_key, header.api_version, exc)
            return
        self._finish(slot, data)

    def _failed(self, what: str, api_key: int, api_version: int, exc: Exception) -> None:
        """A request that could not be read or answered through no fault of the client: say so
        and close the connection, never leaving the exception to the event loop (uvloop closes
        a connection whose callback raised OSError without a word). Out of descriptors is the
        usual cause: kio imports the schema of an API version on first use (messages.preload)."""
        if isinstance(exc, OSError):
            self._abort(f"{what} api {api_key} v{api_version} failed: {exc}")
            return
        log.error("%s: %s api %d v%d failed", self.session.peer, what, api_key, api_version,
                  exc_info=exc)  # fmt: skip
        self._abort("internal error")

    def _finish(self, slot: _Slot, data: bytes | None) -> None:
        """A response is ready (None: the request has none, acks=0); write what is in order."""
        slot.data = data
        slot.done = True
        if data is not None:
            self._held += len(data)
        if slot.fetch:
            self._fetching -= 1
        self._write_ready()

    def _write_ready(self) -> None:
        """Write the responses that are ready in request order (a write, not an fsync)."""
        out: list[bytes] = []
        pending = self._pending
        close = False
        while pending and pending[0].done:
            slot = pending.popleft()
            if slot.data is not None:
                out.append(slot.data)
                self._held -= len(slot.data)
            if slot.close:
                close = True
                break
        sasl = self.session.sasl
        if sasl is not None and sasl.failure is not None:
            if not self._closed:  # the error response goes out after the delay, then the close
                self._fail_login(out, sasl.failure)
            return
        if out and self._transport is not None and not self._closed:
            self._transport.writelines(out)
            assert self._loop is not None
            self._last_active = self._loop.time()
        if close:  # the answers before it are written: close() sends them, then the FIN
            log.info("%s: closing the connection: a produce with acks=0 failed (as Kafka does)",
                     self.session.peer)  # fmt: skip
            self.close()
            return
        if self._backlog:  # answers made room: start what waits
            self._schedule_burst()

    def _unsupported(self, frame: bytes, exc: UnsupportedApi) -> None:
        if exc.api_key == ApiKey.API_VERSIONS:
            # KIP-511: answer in the v0 layout with our ranges so the client can downgrade.
            _, _, correlation_id = peek_header(frame)
            slot = _Slot()
            self._pending.append(slot)
            self._finish(slot, api_versions_error_response(correlation_id, self._broker.advertised))
            return
        self._abort(f"{exc} (closing the connection, as Kafka does)")

    def _abort(self, reason: str, level: int = logging.WARNING) -> None:
        if self._closed:
            return
        log.log(level, "%s: %s", self.session.peer, reason)
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()


def _api_key(frame: bytes) -> int:
    """A request frame's API key (its first two bytes), without decoding the header."""
    return int.from_bytes(frame[:2], "big", signed=True)
