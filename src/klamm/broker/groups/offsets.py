"""Committed offsets of every group, and transactional commits waiting for their transaction:
the owner of offsets (Kafka's OffsetMetadataManager, beside the group coordinator's membership as
Kafka's GroupMetadataManager).

Pure in-memory state rebuilt from `__consumer_offsets`, and no I/O: the operations below decide
from the state which records express a change (`commit_records`, `delete_records`, ...) without
touching it; the coordinator makes those records durable through its runtime, which then applies
them with `replay` — the same method start-up runs over the log (STYLE.md 5, 6).

Transactional commits (TxnOffsetCommit) are held per producer id until the transaction
coordinator decides: COMMIT moves them into the committed map, ABORT drops them (`replay_end_txn`,
for the marker in the log). While any are pending for a partition, OffsetFetch with
require_stable answers UNSTABLE_OFFSET_COMMIT there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from klamm.broker.groups.records import GroupRecord, OffsetKey, OffsetValue
from klamm.protocol.errors import ErrorCode

TopicPartition = tuple[str, int]
# (offset, leader epoch, metadata) as a client commits it.
Commit = tuple[int, int, str | None]
# Kafka's offset.metadata.max.bytes.
OFFSET_METADATA_MAX_BYTES = 4096


@dataclass(slots=True)
class FetchedOffset:
    partition: int
    offset: int = -1
    leader_epoch: int = -1
    metadata: str = ""  # Kafka's NO_METADATA
    error: ErrorCode = ErrorCode.none


class OffsetManager:
    def __init__(
        self, partition_count: Callable[[str], int | None], now_ms: Callable[[], int]
    ) -> None:
        """`partition_count(topic)`: how many partitions the topic has, None if it does not
        exist (commits to unknown partitions are refused)."""
        self._partition_count = partition_count
        self._now_ms = now_ms
        self._committed: dict[str, dict[TopicPartition, OffsetValue]] = {}
        # producer id -> group -> partition -> offset
        self._pending: dict[int, dict[str, dict[TopicPartition, OffsetValue]]] = {}

    # --- replay (live, once durable, and at start-up) -----------------------------------------

    def replay(self, key: OffsetKey, value: OffsetValue | None, producer_id: int | None) -> None:
        """Apply one offset record; `producer_id` is set for a transactional commit, which stays
        pending until its transaction's marker."""
        if producer_id is not None:
            if value is not None:
                groups = self._pending.setdefault(producer_id, {})
                groups.setdefault(key.group, {})[(key.topic, key.partition)] = value
            return
        tp = (key.topic, key.partition)
        if value is None:
            offsets = self._committed.get(key.group)
            if offsets is not None:
                offsets.pop(tp, None)
                if not offsets:
                    del self._committed[key.group]
            return
        self._committed.setdefault(key.group, {})[tp] = value

    def replay_end_txn(self, producer_id: int, commit: bool) -> None:
        """A transaction's marker: its pending commits become visible (commit) or vanish."""
        groups = self._pending.pop(producer_id, {})
        if not commit:
            return
        for group, offsets in groups.items():
            for (topic, partition), value in offsets.items():
                self.replay(OffsetKey(group, topic, partition), value, None)

    # --- decisions: the records of a change, state untouched ----------------------------------

    def partition_error(self, topic: str, partition: int, *, topic_only: bool = False) -> ErrorCode:
        """UNKNOWN_TOPIC_OR_PARTITION unless the partition exists (`topic_only`: the topic)."""
        count = self._partition_count(topic)
        if count is None or not (topic_only or 0 <= partition < count):
            return ErrorCode.unknown_topic_or_partition
        return ErrorCode.none

    def commit_records(
        self, group_id: str, offsets: dict[TopicPartition, Commit], *, topic_only: bool = False
    ) -> tuple[dict[TopicPartition, ErrorCode], list[GroupRecord]]:
        """OffsetCommit / TxnOffsetCommit: an error per partition, and the records of those
        that may be committed. `topic_only`: accept any partition index of an existing topic,
        as Kafka's TxnOffsetCommit does (KafkaApis checks `metadataCache.contains(topic)`)."""
        now = self._now_ms()
        errors: dict[TopicPartition, ErrorCode] = {}
        records: list[GroupRecord] = []
        for (topic, partition), (offset, epoch, metadata) in offsets.items():
            error = self.partition_error(topic, partition, topic_only=topic_only)
            if not error and len((metadata or "").encode()) > OFFSET_METADATA_MAX_BYTES:
                error = ErrorCode.offset_metadata_too_large
            errors[(topic, partition)] = error
            if not error:
                value = OffsetValue(offset, epoch, metadata or "", now)
                records.append((OffsetKey(group_id, topic, partition), value))
        return errors, records

    def delete_records(
        self, group_id: str, partitions: list[TopicPartition], subscribed: frozenset[str]
    ) -> tuple[dict[TopicPartition, ErrorCode], list[GroupRecord]]:
        """OffsetDelete: tombstones for committed offsets of topics the group does not read."""
        errors: dict[TopicPartition, ErrorCode] = {}
        records: list[GroupRecord] = []
        committed = self._committed.get(group_id, {})
        for topic, partition in partitions:
            error = self.partition_error(topic, partition)
            if not error and topic in subscribed:
                error = ErrorCode.group_subscribed_to_topic
            errors[(topic, partition)] = error
            if not error and (topic, partition) in committed:
                records.append((OffsetKey(group_id, topic, partition), None))
        return errors, records

    def group_tombstones(self, group_id: str) -> list[GroupRecord]:
        """Tombstones for every committed offset of a group (DeleteGroups)."""
        return [(OffsetKey(group_id, t, p), None) for (t, p) in self._committed.get(group_id, {})]

    # --- queries ------------------------------------------------------------------------------

    def fetch(
        self, group_id: str, topics: list[tuple[str, list[int]]] | None, require_stable: bool
    ) -> list[tuple[str, list[FetchedOffset]]]:
        """OffsetFetch: committed offsets of `topics` (None: every partition the group has
        committed)."""
        committed = self._committed.get(group_id, {})
        if topics is None:
            by_topic: dict[str, list[int]] = {}
            for topic, partition in sorted(committed):
                by_topic.setdefault(topic, []).append(partition)
            topics = list(by_topic.items())
        result: list[tuple[str, list[FetchedOffset]]] = []
        for topic, partitions in topics:
            rows: list[FetchedOffset] = []
            for partition in partitions:
                tp = (topic, partition)
                if require_stable and self.is_pending(group_id, tp):
                    rows.append(FetchedOffset(partition, error=ErrorCode.unstable_offset_commit))
                    continue
                value = committed.get(tp)
                if value is None:
                    rows.append(FetchedOffset(partition))
                else:
                    rows.append(
                        FetchedOffset(partition, value.offset, value.leader_epoch, value.metadata)
                    )
            result.append((topic, rows))
        return result

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
