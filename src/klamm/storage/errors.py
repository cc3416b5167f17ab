"""Errors raised by the storage layer, split by whose fault they are.

    StorageError                   base of everything storage raises; `code` is Kafka's error code
    ├── KafkaStorageError          the disk failed us (ENOSPC, EIO, ...): retriable, log unchanged
    ├── OffsetOutOfRange           a read/seek outside [log_start_offset, log_end_offset]
    ├── LogClosed                  the log was closed or deleted under the caller
    └── TopicError                 an admin request the caller got wrong
        ├── InvalidTopicName
        ├── TopicExists
        ├── UnknownTopic
        ├── InvalidPartitions
        ├── InvalidConfig
        └── PolicyViolation        a broker limit refuses it (max.broker.partitions)

The broker maps these to wire errors through `code`; `retriable` follows Kafka's classification.
"""

from __future__ import annotations

from typing import ClassVar

from klamm.protocol.errors import ErrorCode

__all__ = [
    "InvalidConfig",
    "InvalidPartitions",
    "InvalidTopicName",
    "KafkaStorageError",
    "LogClosed",
    "OffsetOutOfRange",
    "PolicyViolation",
    "StorageError",
    "TopicError",
    "TopicExists",
    "UnknownTopic",
]


class StorageError(Exception):
    """Base of every storage error. Carries Kafka's error code for the wire."""

    code: ClassVar[ErrorCode] = ErrorCode.kafka_storage_error
    retriable: ClassVar[bool] = True


class KafkaStorageError(StorageError):
    """An OS-level I/O failure (disk full, I/O error). The log was rolled back to its state
    before the failing operation, so retrying later is safe."""


class LogClosed(StorageError):
    """The partition log is closed (topic deleted or broker shutting down)."""

    code = ErrorCode.not_leader_or_follower
    retriable = True


class OffsetOutOfRange(StorageError):
    code = ErrorCode.offset_out_of_range
    retriable = False

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(f"offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class TopicError(StorageError):
    """An admin operation on topics that the caller got wrong; never retriable."""

    retriable = False


class InvalidTopicName(TopicError):
    code = ErrorCode.invalid_topic_exception


class TopicExists(TopicError):
    code = ErrorCode.topic_already_exists


class UnknownTopic(TopicError):
    code = ErrorCode.unknown_topic_or_partition
    retriable = True  # Kafka classifies UNKNOWN_TOPIC_OR_PARTITION as retriable


class InvalidPartitions(TopicError):
    code = ErrorCode.invalid_partitions


class InvalidConfig(TopicError):
    code = ErrorCode.invalid_config


class PolicyViolation(TopicError):
    """A broker limit refuses the request: POLICY_VIOLATION, which Kafka's controller answers
    for its own per-request partition bound (ReplicationControlManager)."""

    code = ErrorCode.policy_violation
