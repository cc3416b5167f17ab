"""The consumer's offsets and its commit policy: `OffsetManager`.

KafkaJS's split (src/consumer/offsetManager/index.js): a message is *resolved* once its handler
returned; resolved offsets are committed when the auto-commit interval or threshold says so, at
the end of each batch, before a partition is revoked, and on stop. This object keeps what was
resolved and not yet committed, the last resolved position of each partition (kept across
commits, for a retried batch to start after what it resolved), and decides when a commit is due.
It does no I/O: the consumer sends the commits it hands out (`take_*`).

Offsets here are the NEXT offset to read, as Kafka stores them (KafkaJS's resolveOffset(o)
stores o + 1 alike).

Concurrency contract: event loop thread only. The clock is injected for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

TP = tuple[str, int]


class OffsetManager:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._resolved: dict[TP, int] = {}  # resolved, not yet committed
        self._positions: dict[TP, int] = {}  # last resolved, kept across commits
        self._resolved_count = 0
        self._last_commit = clock()
        self.auto_commit = True
        self._interval_s: float | None = None
        self._threshold: int | None = None

    def configure(
        self, *, auto_commit: bool, interval_ms: int | None, threshold: int | None
    ) -> None:
        """run()'s commit policy (KafkaJS's autoCommit, autoCommitInterval, autoCommitThreshold)."""
        self.auto_commit = auto_commit
        self._interval_s = interval_ms / 1000 if interval_ms is not None else None
        self._threshold = threshold

    def resolve(self, tp: TP, next_offset: int) -> None:
        """The caller checked that `tp` is assigned."""
        self._resolved[tp] = next_offset
        self._positions[tp] = next_offset
        self._resolved_count += 1

    def position(self, tp: TP) -> int | None:
        """The next offset after the last resolved message of `tp`, if any was resolved."""
        return self._positions.get(tp)

    def uncommitted(self) -> dict[TP, int]:
        return dict(self._resolved)

    def has_uncommitted(self) -> bool:
        return bool(self._resolved)

    def commits_within_batches(self) -> bool:
        """Whether an auto-commit interval or threshold may commit before a batch ends."""
        return self.auto_commit and (self._interval_s is not None or self._threshold is not None)

    def commit_due(self) -> bool:
        """The interval or threshold says to commit now (KafkaJS's commitOffsetsIfNecessary)."""
        if not self._resolved or not self.commits_within_batches():
            return False
        interval, threshold = self._interval_s, self._threshold
        return (interval is not None and self._clock() - self._last_commit >= interval) or (
            threshold is not None and self._resolved_count >= threshold
        )

    def take_resolved(self) -> dict[TP, int]:
        """Everything resolved and not committed, to commit now; the policy's counters restart."""
        resolved, self._resolved = self._resolved, {}
        self._resolved_count = 0
        self._last_commit = self._clock()
        return resolved

    def forget(self, tps: Iterable[TP]) -> dict[TP, int]:
        """Partitions revoked or seeked: drop their positions; returns their uncommitted offsets."""
        dropped: dict[TP, int] = {}
        for tp in tps:
            self._positions.pop(tp, None)
            offset = self._resolved.pop(tp, None)
            if offset is not None:
                dropped[tp] = offset
        return dropped

    def clear(self) -> None:
        self._resolved.clear()
        self._positions.clear()
        self._resolved_count = 0
