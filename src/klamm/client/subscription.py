"""What the consumer subscribed to, owns, paused and was asked to seek: `SubscriptionState`.

KafkaJS's split (src/consumer/subscriptionState.js): the subscription state knows the topics and
the assignment, and answers "is this partition paused?" from sticky per-topic state, so a topic
paused as a whole stays paused for partitions that arrive later by rebalance, until resumed. On
top of KafkaJS's, it keeps what librdkafka's asynchronous fetching needs:

- seek requests made before the partition is assigned (applied on assignment);
- *stale* partitions: seeked or revoked since the current fetch began, so the messages
  in hand for them must not be processed;
- a seek epoch per partition, so a fetch that was running while seek() was called is recognised;
- the offset a paused partition must be fetched again from once resumed.

Concurrency contract: the consumer touches this only on the event loop thread (consumer.py).
Invariants: (1) every stale, resume-at or seek-epoch entry is for a partition that was assigned;
(2) a partition is paused iff `is_paused()` says so, whether it is assigned yet or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from klamm.client.errors import ConfigError

TP = tuple[str, int]


@dataclass(slots=True)
class _TopicPause:
    """KafkaJS's per-topic pause state: all partitions (`all`, minus `resumed`) or some."""

    all: bool = False
    paused: set[int] = field(default_factory=set)
    resumed: set[int] = field(default_factory=set)


class SubscriptionState:
    def __init__(self) -> None:
        self._topics: list[str] = []
        self._from_beginning: dict[str, bool] = {}
        self._assigned: set[TP] = set()
        self._pauses: dict[str, _TopicPause] = {}
        self._pending_seeks: dict[TP, int] = {}
        self._stale: set[TP] = set()
        self._seek_epoch: dict[TP, int] = {}
        self._sought: dict[TP, int] = {}  # the offset of each partition's last seek
        self._resume_at: dict[TP, int] = {}
        # The assigned partitions that are paused, kept up to date by every change to either,
        # so the runner's per-message test is one set lookup.
        self._paused_now: set[TP] = set()

    def _refresh_paused(self) -> None:
        self._paused_now.clear()
        self._paused_now.update(tp for tp in self._assigned if self.is_paused(tp))

    # -- the subscription ---------------------------------------------------------------------

    def subscribe(self, names: Iterable[str], *, from_beginning: bool) -> None:
        """Add topics; `from_beginning` is per call, as in KafkaJS (the first call for a topic
        decides)."""
        for name in names:
            if name not in self._from_beginning:
                self._topics.append(name)
                self._from_beginning[name] = from_beginning

    def topics(self) -> list[str]:
        return list(self._topics)

    def from_beginning(self, topic: str) -> bool | None:
        """Where a subscribed topic starts without a committed offset; None for a topic matched
        by a "^" pattern (see `pattern_from_beginning`)."""
        return self._from_beginning.get(topic)

    def pattern_from_beginning(self, topic: str) -> bool:
        """A topic found through a "^" pattern starts where the first matching pattern says."""
        for name, start in self._from_beginning.items():
            if name.startswith("^") and re.match(name, topic):
                return start
        return False

    def uniform_start(self) -> bool | None:
        """True/False when every subscribe() call agreed on from_beginning, else None."""
        starts = set(self._from_beginning.values())
        return starts.pop() if len(starts) == 1 else None

    # -- the assignment -----------------------------------------------------------------------

    def assign(self, tps: Iterable[TP], *, incremental: bool) -> None:
        tps = list(tps)
        if not incremental:
            self._assigned.clear()
        self._assigned.update(tps)
        self._stale.difference_update(tps)
        self._refresh_paused()

    def revoke(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._assigned.discard(tp)
            self._stale.add(tp)
            self._resume_at.pop(tp, None)
        self._refresh_paused()

    def clear(self) -> None:
        """The consumer stopped: nothing is owned; pauses and the subscription stay (KafkaJS)."""
        self._assigned.clear()
        self._stale.clear()
        self._resume_at.clear()
        self._paused_now.clear()

    def is_assigned(self, tp: TP) -> bool:
        return tp in self._assigned

    def assignment(self) -> list[TP]:
        return sorted(self._assigned)

    # -- pause / resume (KafkaJS's shapes: [{"topic": t, "partitions": [0, 1]}]) -------------

    def pause(self, spec: Sequence[Mapping[str, Any]]) -> list[TP]:
        """Record the pause; returns the assigned partitions it pauses now."""
        for topic, parts in _entries(spec):
            state = self._pauses.setdefault(topic, _TopicPause())
            if parts is None:
                state.all, state.paused, state.resumed = True, set(), set()
            else:
                state.paused.update(parts)
                state.resumed.difference_update(parts)
                state.all = False
        self._refresh_paused()
        return sorted(self._paused_now)

    def resume(self, spec: Sequence[Mapping[str, Any]]) -> list[TP]:
        """Record the resume; returns the assigned partitions no longer paused."""
        before = set(self._paused_now)
        for topic, parts in _entries(spec):
            state = self._pauses.setdefault(topic, _TopicPause())
            if parts is None:
                state.all, state.paused, state.resumed = False, set(), set()
            else:
                state.paused.difference_update(parts)
                if state.all:
                    state.resumed.update(parts)
        self._refresh_paused()
        return sorted(before - self._paused_now)

    def is_paused(self, tp: TP) -> bool:
        state = self._pauses.get(tp[0])
        if state is None:
            return False
        return (state.all and tp[1] not in state.resumed) or tp[1] in state.paused

    def paused_set(self) -> set[TP]:
        """The live set of assigned paused partitions, for the runner's per-message test."""
        return self._paused_now

    def paused(self) -> list[dict[str, Any]]:
        """KafkaJS's consumer.paused(): the assigned partitions that are paused, by topic."""
        by_topic: dict[str, list[int]] = {}
        for t, p in sorted(self._assigned):
            if self.is_paused((t, p)):
                by_topic.setdefault(t, []).append(p)
        return [{"topic": t, "partitions": ps} for t, ps in by_topic.items()]

    # -- seeks and staleness ------------------------------------------------------------------

    def request_seek(self, tp: TP, offset: int) -> None:
        """A seek for a partition not assigned yet: applied when it is."""
        self._pending_seeks[tp] = offset

    def take_pending_seeks(self) -> dict[TP, int]:
        seeks, self._pending_seeks = self._pending_seeks, {}
        return seeks

    def mark_seeked(self, tp: TP, offset: int) -> None:
        """The position of `tp` changed to `offset`: messages fetched before are stale."""
        self._stale.add(tp)
        self._seek_epoch[tp] = self._seek_epoch.get(tp, 0) + 1
        self._sought[tp] = offset
        self._resume_at.pop(tp, None)

    def sought(self, tp: TP) -> int | None:
        """The offset the last seek of `tp` went to."""
        return self._sought.get(tp)

    def seek_epochs(self) -> dict[TP, int]:
        return dict(self._seek_epoch)

    def seek_epoch(self, tp: TP) -> int:
        return self._seek_epoch.get(tp, 0)

    def clear_stale(self) -> None:
        """A new fetch began after every seek so far: nothing in hand is stale."""
        self._stale.clear()

    def stale_set(self) -> set[TP]:
        """The live set of stale partitions, for the runner's per-message test (read only)."""
        return self._stale

    def is_stale(self, tp: TP) -> bool:
        """Do not process messages in hand for `tp`: seeked, revoked or paused since fetched."""
        return tp in self._stale or tp not in self._assigned or tp in self._paused_now

    def set_resume_at(self, tp: TP, offset: int) -> None:
        """A paused partition's next message to fetch once it is resumed."""
        self._resume_at[tp] = offset

    def take_resume_at(self, tp: TP) -> int | None:
        return self._resume_at.pop(tp, None)


def _entries(spec: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    """KafkaJS's `[{topic, partitions?}]` (or one such mapping), checked."""
    if isinstance(spec, Mapping):
        spec = [spec]
    if isinstance(spec, str) or not isinstance(spec, Sequence):
        raise ConfigError(f"expected [{{'topic': ..., 'partitions': [...]}}], not {spec!r}")
    entries: list[tuple[str, Any]] = []
    for entry in spec:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("topic"), str):
            raise ConfigError(f"each entry needs a 'topic' name: {entry!r}")
        parts = entry.get("partitions")
        if parts is not None:
            if isinstance(parts, str | bytes) or not isinstance(parts, Iterable):
                raise ConfigError(f"'partitions' must be a list of ints: {parts!r}")
            if not all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
                raise ConfigError(f"'partitions' must be a list of ints: {parts!r}")
            parts = [int(p) for p in parts]
        entries.append((entry["topic"], parts))
    return entries
