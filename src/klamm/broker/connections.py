"""The broker's open client connections: Kafka's connection limits, and one receive buffer.

`Connections` is the one owner of the set of open connections. A connection asks `admit` when
it is accepted and calls `discard` when it is lost; `admit` enforces Kafka's `max.connections`
and `max.connections.per.ip` (Kafka's ConnectionQuotas) and counts connections per client
address so the check costs O(1), not a walk over every connection.

Over a limit Kafka closes a per-IP excess right after accept (and blocks its acceptor for the
broker-wide one, leaving new connections in the kernel's backlog); asyncio cannot pause its
accept loop, so klamm closes both right after accept. The refusal is a WARNING, at most one
line per `_WARN_INTERVAL` with the count of refusals since the last one: a client in a reconnect
loop would otherwise write thousands of lines a second.

The receive buffer: every connection reads into the same `bytearray`. asyncio (and uvloop, and
the TLS layer) call `get_buffer`, fill it and call `buffer_updated` in one go for one
connection, and `buffer_updated` copies what it needs before returning, so one buffer per event
loop serves them all. An idle connection then holds no receive buffer at all (it held 256 KiB:
2,000 idle connections cost 500 MiB); what a connection keeps between reads is only the part
of a frame not yet complete (`FrameDecoder`), which shrinks back once the frame is done.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

log = logging.getLogger("klamm.broker.connection")

# Size of the shared receive buffer: large enough that a big Produce arrives in few callbacks
# (research/performance.md B3); one per broker, so its size no longer multiplies.
RECEIVE_BUFFER = 256 * 1024
# At most one WARNING about refused connections per this many seconds (the count of those
# refused in between goes with it).
_WARN_INTERVAL = 10.0


C = TypeVar("C")  # a connection: Connections needs nothing of it but its identity


class Connections(Generic[C]):
    def __init__(
        self,
        max_connections: int,
        max_connections_per_ip: int,
        per_ip_overrides: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.max_connections_per_ip = max_connections_per_ip
        self._per_ip_overrides = dict(per_ip_overrides or {})  # address -> its own limit
        self.receive_buffer = bytearray(RECEIVE_BUFFER)
        self._clock = clock
        self._open: dict[C, str] = {}  # connection -> its client address
        self._per_ip: collections.Counter[str] = collections.Counter()
        self._refused_since_warning = 0
        self._warned_at: float | None = None

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[C]:
        return iter(list(self._open))

    def admit(self, connection: C, ip: str) -> str | None:
        """Count a new connection from `ip`; None if it may stay, else why it is refused (it
        is then not counted, and the caller closes it)."""
        reason = None
        if len(self._open) >= self.max_connections:
            reason = f"the broker has max.connections={self.max_connections} open"
        elif ip in self._per_ip_overrides and self._per_ip[ip] >= self._per_ip_overrides[ip]:
            limit = self._per_ip_overrides[ip]
            reason = f"{ip} already has its max.connections.per.ip.overrides={limit} open"
        elif ip not in self._per_ip_overrides and self._per_ip[ip] >= self.max_connections_per_ip:
            reason = f"{ip} already has max.connections.per.ip={self.max_connections_per_ip} open"
        if reason is not None:
            self._warn_refused(ip, reason)
            return reason
        self._open[connection] = ip
        self._per_ip[ip] += 1
        return None

    def discard(self, connection: C) -> None:
        ip = self._open.pop(connection, None)
        if ip is None:  # refused at accept, or already gone
            return
        self._per_ip[ip] -= 1
        if not self._per_ip[ip]:
            del self._per_ip[ip]

    def _warn_refused(self, ip: str, reason: str) -> None:
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < _WARN_INTERVAL:
            self._refused_since_warning += 1
            return
        more = self._refused_since_warning
        self._refused_since_warning = 0
        self._warned_at = now
        log.warning(
            "refused a connection from %s: %s%s", ip, reason,
            f" ({more} more refused since the last warning)" if more else "",
        )  # fmt: skip
