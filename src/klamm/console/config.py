"""What a console is told at start-up: where it listens, which cluster it shows, who may use it.

The safety rules of issue 15 live here, checked once before anything binds:
1. the default address is loopback (127.0.0.1), so a console is private unless asked otherwise;
2. a console bound anywhere else must have a login (a token or a user), or it refuses to start;
3. read-only hides and refuses every mutating action.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_HOST = "127.0.0.1"
# 8080 is where Kafka UI, AKHQ and Redpanda Console users look first.
DEFAULT_PORT = 8080
# A page of the message browser never reads more than this many bytes of keys, values and
# headers (issue 15: "a page never reads more than a configured number of bytes"). 4 MiB holds a
# page of 50 large JSON documents yet stays quick to render and to ship to a phone.
DEFAULT_PAGE_BYTES = 4 * 1024 * 1024
# Messages per page: what fits on a laptop screen in two scrolls.
DEFAULT_PAGE_MESSAGES = 50
# A filtered search scans at most this many messages per request: bounded work per click (a
# scan of 10,000 local messages takes well under a second), and the page says how far it got.
DEFAULT_SCAN_MESSAGES = 10_000
# Seconds between two samples of end and committed offsets: rates and lag charts come from the
# difference of two samples; five seconds is fine-grained enough to see a consumer catching up
# while costing two ListOffsets and one OffsetFetch per group per five seconds.
DEFAULT_SAMPLE_INTERVAL_S = 5.0
# Seconds the console waits for the cluster at start-up before giving up: as the CLI's default
# --timeout, long enough for a managed cluster's first metadata round trip.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
# Samples kept for the charts: 120 x 5 s = the last ten minutes.
DEFAULT_HISTORY = 120


class ConsoleConfigError(ValueError):
    """A setting the console refuses; the message names it."""


@dataclass(frozen=True)
class ConsoleConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Connection to the cluster, as klamm.client.Kafka takes it.
    brokers: str = "127.0.0.1:9092"
    ssl: bool | Mapping[str, Any] | None = None
    sasl: Mapping[str, Any] | None = None
    client_config: Mapping[str, Any] = field(default_factory=dict)
    read_only: bool = False
    # Login: a token (`--token`), or a user (`--user NAME:PASSWORD`); either is accepted as
    # HTTP basic or bearer credentials too, for scripts.
    token: str | None = None
    user: tuple[str, str] | None = None
    page_bytes: int = DEFAULT_PAGE_BYTES
    page_messages: int = DEFAULT_PAGE_MESSAGES
    scan_messages: int = DEFAULT_SCAN_MESSAGES
    sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S
    history: int = DEFAULT_HISTORY
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S

    @property
    def login_required(self) -> bool:
        return self.token is not None or self.user is not None

    def check(self) -> None:
        """Raise ConsoleConfigError for a setting that must not start (rule 2 above)."""
        if not 0 <= self.port <= 65535:
            raise ConsoleConfigError(f"console port {self.port} is not 0..65535")
        if not is_loopback(self.host) and not self.login_required:
            raise ConsoleConfigError(
                f"the console would listen on {self.host}, beyond this machine, without a "
                "login: give --token or --user NAME:PASSWORD (or bind 127.0.0.1)"
            )
        if self.token is not None and not self.token:
            raise ConsoleConfigError("the console token is empty")
        if self.user is not None and (not self.user[0] or not self.user[1]):
            raise ConsoleConfigError("the console user needs a name and a password")
        for name in ("page_bytes", "page_messages", "scan_messages", "history"):
            if getattr(self, name) < 1:
                raise ConsoleConfigError(f"console {name} must be at least 1")
        if self.connect_timeout_s <= 0:
            raise ConsoleConfigError("console connect timeout must be positive")
        if self.sample_interval_s <= 0:
            raise ConsoleConfigError("console sample interval must be positive")


def is_loopback(host: str) -> bool:
    """True when `host` names only this machine: a loopback address, or a name resolving to
    loopback addresses only ("localhost"). Unresolvable names count as not loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )
