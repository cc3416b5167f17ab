"""Committed offsets of every group, and transactional commits waiting for their transaction.

Pure in-memory state rebuilt from `__consumer_offsets`: the coordinator applies each offset record
once it is durable (live) or as it reads the log (start-up), through the same `apply` methods.

Transactional commits (TxnOffsetCommit) are held per producer id until the transaction
coordinator decides: COMMIT moves them into the committed map, ABORT drops them. While any are
pending for a partition, OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT there.
"""

from __future__ import annotations

from collections.abc import Iterator

from klamm.broker.groups.records import OffsetKey, OffsetValue

TopicPartition = tuple[str, int]


class OffsetStore:
    def __init__(self) -> None:
        self._committed: dict[str, dict[TopicPartition, OffsetValue]] = {}
        # producer id -> group -> partition -> offset
        self._pending: dict[int, dict[str, dict[TopicPartition, OffsetValue]]] = {}

    # --- applying records ---------------------------------------------------------------------

    def apply(self, key: OffsetKey, value: OffsetValue | None) -> None:
        tp = (key.topic, key.partition)
        if value is None:
            offsets = self._committed.get(key.group)
            if offsets is not None:
                offsets.pop(tp, None)
                if not offsets:
                    del self._committed[key.group]
            return
        self._committed.setdefault(key.group, {})[tp] = value

    def apply_pending(self, producer_id: int, key: OffsetKey, value: OffsetValue | None) -> None:
        if value is None:
            return
        groups = self._pending.setdefault(producer_id, {})
        groups.setdefault(key.group, {})[(key.topic, key.partition)] = value

    def complete(self, producer_id: int, commit: bool) -> list[tuple[OffsetKey, OffsetValue]]:
        """End a transaction's offset commits; returns what became visible."""
        groups = self._pending.pop(producer_id, {})
        applied: list[tuple[OffsetKey, OffsetValue]] = []
        if not commit:
            return applied
        for group, offsets in groups.items():
            for (topic, partition), value in offsets.items():
                key = OffsetKey(group, topic, partition)
                self.apply(key, value)
                applied.append((key, value))
        return applied

    # --- queries ------------------------------------------------------------------------------

    def get(self, group: str, tp: TopicPartition) -> OffsetValue | None:
        return self._committed.get(group, {}).get(tp)

    def of_group(self, group: str) -> dict[TopicPartition, OffsetValue]:
        return dict(self._committed.get(group, {}))

    def has_offsets(self, group: str) -> bool:
        return bool(self._committed.get(group))

    def groups(self) -> Iterator[str]:
        return iter(list(self._committed))

    def is_pending(self, group: str, tp: TopicPartition) -> bool:
        return any(tp in groups.get(group, {}) for groups in self._pending.values())

    def has_pending(self, group: str) -> bool:
        return any(group in groups for groups in self._pending.values())

    def pending_producers(self) -> list[int]:
        return list(self._pending)

    def expired(
        self,
        group: str,
        now_ms: int,
        retention_ms: int,
        empty_since_ms: int | None,
        subscribed: frozenset[str] | None = None,
    ) -> list[OffsetKey]:
        """Offsets past retention (Kafka 2.1+, KIP-211). A consumer group's offsets expire
        together, `retention_ms` after the group became Empty (`empty_since_ms`); a group that
        only commits (no protocol, `empty_since_ms` None) loses each offset `retention_ms` after
        its commit; a stable consumer group (`subscribed` given) keeps the offsets of the topics
        its members subscribe to and loses the others `retention_ms` after their commit."""
        offsets = self._committed.get(group, {})
        if subscribed is not None:
            return [
                OffsetKey(group, t, p)
                for (t, p), value in offsets.items()
                if t not in subscribed and now_ms - value.commit_timestamp >= retention_ms
            ]
        if empty_since_ms is not None:
            if now_ms - empty_since_ms < retention_ms:
                return []
            return [OffsetKey(group, t, p) for (t, p) in offsets]
        return [
            OffsetKey(group, t, p)
            for (t, p), value in offsets.items()
            if now_ms - value.commit_timestamp >= retention_ms
        ]
