"""The broker's listening sockets, with an accept loop of our own, and the fd limit at start.

Why not `loop.create_server`: when the process is out of descriptors (EMFILE/ENFILE), uvloop
(libuv) accepts each pending connection and closes it at once, saying nothing, and if libuv's
reserve descriptor is gone too it closes the listening socket for good, again silently; asyncio
logs an ERROR with a traceback per attempt. Here accept errors are logged at WARNING, at most
once per `WARN_INTERVAL_S` with a count of the ones in between; pending connections wait in the
kernel's backlog instead of being dropped; idle segment files are given back (`release_fds`)
and accepting resumes `RETRY_DELAY_S` later, so the listener keeps serving once descriptors are
free. Each accepted socket becomes a transport through `loop.connect_accepted_socket` (TLS
handshake included), which both asyncio and uvloop implement.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from collections.abc import Callable

log = logging.getLogger("klamm.broker")

# Kafka's SocketServer backlog default (socket.listen.backlog.size is 50); asyncio's default of
# 100 is kept: connections wait there while the broker is out of descriptors.
BACKLOG = 100
# How soon to try accepting again after running out of descriptors: short, since a connection
# closing frees one; each retry is one accept() call.
RETRY_DELAY_S = 0.1
# At most one warning this often while accepts keep failing (the rest are counted in it).
WARN_INTERVAL_S = 10.0
# Accepts per readable event, so a connection storm cannot hold the loop for long.
_ACCEPTS_PER_WAKEUP = 64


def raise_fd_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as Kafka's docs tell operators to do by
    hand): every connection and open segment file needs a descriptor. Returns the soft limit now
    in force (None: unlimited, or not POSIX); the start-up line reports it."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = 1 << 20  # Linux refuses "unlimited" above fs.nr_open (1 Mi by default)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the file descriptor limit from %d: %s", soft, exc)
            return soft
        log.debug("file descriptor limit raised from %d to %d", soft, target)
        return target
    log.debug("file descriptor limit %s (hard limit %s)", soft, hard)
    return None if soft == resource.RLIM_INFINITY else soft


class Listener:
    """Accepts connections on bound sockets and hands each to `protocol_factory`'s protocol."""

    def __init__(
        self,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        tls: ssl.SSLContext | None,
        release_fds: Callable[[], int],
    ) -> None:
        self.sockets = sockets
        self._factory = protocol_factory
        self._tls = tls
        self._release_fds = release_fds
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._setups: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._last_warning = float("-inf")
        self._failures_unreported = 0
        self.accept_failures = 0  # since start: for tests and metrics
        self._failing_since: float | None = None  # monotonic time of the first failed accept
        self._last_recovery = float("-inf")

    @classmethod
    async def bind(
        cls,
        host: str,
        port: int,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        tls: ssl.SSLContext | None,
        release_fds: Callable[[], int],
    ) -> Listener:
        """Bind every address `host` resolves to (as create_server does) and start accepting.
        Raises OSError when an address cannot be bound."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        sockets: list[socket.socket] = []
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(BACKLOG)
                sock.setblocking(False)
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        listener = cls(sockets, protocol_factory, tls, release_fds)
        listener._serve()
        return listener

    def _serve(self) -> None:
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _pause(self) -> None:
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the peer gave up while waiting in the backlog
            except OSError as exc:
                # Out of descriptors or memory (or anything else accept can fail with): never
                # a reason to stop listening.
                self._accept_failed(sock, exc)
                return
            conn.setblocking(False)
            if self._failing_since is not None:
                self._recovered()
            self._start_connection(conn, _peer_address(address))

    def _start_connection(self, conn: socket.socket, peer: str) -> None:
        """Make a transport and protocol of `conn` (awaiting a TLS handshake, if any). Once the
        coroutine runs, the transport owns the socket and closes it on failure; only a task
        cancelled before it ran (close() right after accept) leaves `conn` to us."""
        started = False

        async def setup() -> None:
            nonlocal started
            started = True
            try:
                await self._loop.connect_accepted_socket(self._factory, conn, ssl=self._tls)
            except Exception as exc:  # a failed TLS handshake, a peer gone already
                # INFO, as Kafka logs a failed TLS handshake: a connection dropped here is never
                # dropped silently.
                log.info("connection from %s dropped during setup: %r", peer, exc)

        def done(task: asyncio.Task[None]) -> None:
            self._setups.discard(task)
            if not started:
                conn.close()

        task = self._loop.create_task(setup())
        self._setups.add(task)
        task.add_done_callback(done)

    def _accept_failed(self, sock: socket.socket, exc: OSError) -> None:
        """Stop accepting for a moment (the connection waits in the backlog), free what we can,
        and say so, at most once per WARN_INTERVAL_S."""
        self.accept_failures += 1
        self._failures_unreported += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        released = self._release_fds() if exc.errno in (errno.EMFILE, errno.ENFILE) else 0
        now = time.monotonic()
        if now - self._last_warning >= WARN_INTERVAL_S:
            log.warning(
                "cannot accept connections on %s: %s (%d time(s) since the last warning); "
                "closed %d idle segment file(s), retrying every %.1f s. Raise the fd limit "
                "(ulimit -n) or lower klamm.log.segment.open.files.max",
                _address(sock), exc.strerror, self._failures_unreported, released,
                RETRY_DELAY_S,
            )  # fmt: skip
            self._last_warning = now
            self._failures_unreported = 0
        if self._retry is None:
            self._pause()
            self._retry = self._loop.call_later(RETRY_DELAY_S, self._resume)

    def _recovered(self) -> None:
        """An accept succeeded after failures: say so, at most once per WARN_INTERVAL_S (under
        steady pressure accepts alternate between failing and succeeding)."""
        assert self._failing_since is not None
        now = time.monotonic()
        if now - self._last_recovery >= WARN_INTERVAL_S:
            log.warning("accepting connections again (%d failed accepts over %.1f s)",
                        self.accept_failures, now - self._failing_since)  # fmt: skip
            self._last_recovery = now
            self._failing_since = None

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            self._serve()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        else:
            self._pause()
        for sock in self.sockets:
            sock.close()
        for task in self._setups:
            task.cancel()


def _peer_address(address: object) -> str:
    """An accepted connection's address as host:port, for log lines."""
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def _address(sock: socket.socket) -> str:
    try:
        host, port = sock.getsockname()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"
