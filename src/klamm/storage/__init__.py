"""klamm.storage: synchronous, file-based partition logs (Kafka's segment layout).

The broker needs only what is exported here; the segment and index modules are internals.
"""

from __future__ import annotations

from klamm.storage.config import TOPIC_CONFIGS, ConfigDef, LogConfig, validate_topic_configs
from klamm.storage.errors import (
    InvalidConfig,
    InvalidPartitions,
    InvalidTopicName,
    KafkaStorageError,
    LogClosed,
    OffsetOutOfRange,
    StorageError,
    TopicError,
    TopicExists,
    UnknownTopic,
)
from klamm.storage.log import AppendResult, PartitionLog
from klamm.storage.log_manager import LogManager, TopicInfo, validate_topic_name

__all__ = [
    "TOPIC_CONFIGS",
    "AppendResult",
    "ConfigDef",
    "InvalidConfig",
    "InvalidPartitions",
    "InvalidTopicName",
    "KafkaStorageError",
    "LogClosed",
    "LogConfig",
    "LogManager",
    "OffsetOutOfRange",
    "PartitionLog",
    "StorageError",
    "TopicError",
    "TopicExists",
    "TopicInfo",
    "UnknownTopic",
    "validate_topic_configs",
    "validate_topic_name",
]
