"""The authorizer's log of refusals, the lines Kafka's `kafka.authorizer.logger` writes.

Kafka logs at INFO every refusal of something a client asked for by name:
    Principal = User:bob is Denied operation = WRITE from host = 10.0.0.5 on resource =
    Topic:LITERAL:orders for request = Produce based on rule ...
and nothing at INFO for checks that only filter what a client is shown (the topics of an
all-topics Metadata, the groups of ListGroups) or that try a broader permission first (CREATE on
the cluster before CREATE on each topic). klamm writes the same lines, to the logger
`klamm.authorizer`, so an operator can tell who was refused what without turning on DEBUG.

Bounded, unlike Kafka's: a client refused in a loop would write a line per request, thousands a
second, and fill the disk. The same refusal (principal, host, operation, resource) is written at
most once per `REPEAT_INTERVAL_S`, and at most `LINES_PER_SECOND` lines a second in all; the
next line written says how many were held back meanwhile. Which refusals were seen recently is
remembered for at most `KEYS_MAX` of them (least recently written forgotten first), so a client
naming endless distinct resources costs bounded memory and at most LINES_PER_SECOND lines.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from klamm.broker.authorizer.model import Operation, ResourceType

__all__ = ["KEYS_MAX", "LINES_PER_SECOND", "REPEAT_INTERVAL_S", "RefusalLog", "resource_label"]

log = logging.getLogger("klamm.authorizer")

# The same refusal is written again at most this often.
REPEAT_INTERVAL_S = 10.0
# Lines written a second, all refusals together.
LINES_PER_SECOND = 20
# Distinct refusals remembered for the repeat interval.
KEYS_MAX = 4096

_Key = tuple[str, str, Operation, ResourceType, str]


def resource_label(resource_type: ResourceType, name: str) -> str:
    """Kafka's audit form of a resource: `Topic:LITERAL:orders`, `TransactionalId:LITERAL:tx`."""
    kind = "".join(part.capitalize() for part in resource_type.name.split("_"))
    return f"{kind}:LITERAL:{name}"


class RefusalLog:
    """Writes refusals (see the module docstring). One per authorizer; event loop only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._written: collections.OrderedDict[_Key, float] = collections.OrderedDict()
        self._second_started = float("-inf")
        self._lines_this_second = 0
        self._held_back = 0

    def refused(
        self,
        principal: str,
        host: str,
        operation: Operation,
        resource_type: ResourceType,
        name: str,
        request: str,
        rule: Callable[[], str],
    ) -> None:
        """Log that `principal` was refused; `rule` (called only when a line is written) says
        which rule refused it."""
        if not log.isEnabledFor(logging.INFO):
            return
        now = self._clock()
        key = (principal, host, operation, resource_type, name)
        written = self._written.get(key)
        if written is not None and now - written < REPEAT_INTERVAL_S:
            self._held_back += 1
            return
        if now - self._second_started >= 1.0:
            self._second_started = now
            self._lines_this_second = 0
        if self._lines_this_second >= LINES_PER_SECOND:
            self._held_back += 1
            return
        self._lines_this_second += 1
        self._written[key] = now
        self._written.move_to_end(key)
        while len(self._written) > KEYS_MAX:
            self._written.popitem(last=False)
        held_back, self._held_back = self._held_back, 0
        log.info(
            "Principal = %s is Denied operation = %s from host = %s on resource = %s "
            "for request = %s based on rule %s%s",
            principal, operation.name, host, resource_label(resource_type, name), request,
            rule(), f" ({held_back} more refusals not logged before this one)" if held_back else "",
        )  # fmt: skip
