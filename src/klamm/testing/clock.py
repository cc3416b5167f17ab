"""`FakeClock`: time that moves only when a test says so.

klamm never reads the wall clock deep in its logic: the broker, the log manager and every
partition log take `now_ms: Callable[[], int]` (milliseconds since the epoch). Pass a FakeClock
(the clock itself is that callable; `clock.now_ms` is the same thing, spelled out) and retention,
segment rolling, timeouts and timestamps follow `advance()` instead of real time:

    clock = FakeClock()
    log = PartitionLog.open(path, LogConfig(retention_ms=1000), clock)
    clock.advance(1001)  # one second later, as far as the log can tell

Like trio.testing.MockClock, it never goes backwards: `advance` refuses a negative step, since
code written against a real clock may rightly assume time is monotonic.
"""

from __future__ import annotations

# A fixed, recent moment (2023-11-14T22:13:20Z): record timestamps near "now" look like real ones,
# and a test's output is the same on every run.
DEFAULT_START_MS = 1_700_000_000_000


class FakeClock:
    """Milliseconds since the epoch that move only in `advance`."""

    __slots__ = ("_now",)

    def __init__(self, start_ms: int = DEFAULT_START_MS) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        """The current fake time, in milliseconds since the epoch."""
        return self._now

    def __call__(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        """Move time forward by `ms` milliseconds."""
        if ms < 0:
            raise ValueError(f"time cannot go backwards (advance by {ms} ms)")
        self._now += ms

    def __repr__(self) -> str:
        return f"FakeClock(now_ms={self._now})"
