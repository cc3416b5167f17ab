"""klamm.storage: synchronous, file-based partition logs (Kafka's segment layout).

The broker needs only what is exported here, and imports it from here (tested: see
tests/storage/test_ownership.py); the modules behind it are internals:

    log_manager   LogManager: the data directory, its topics and their PartitionLogs
    log           PartitionLog: one partition's segments (append, read, flush, retention,
                  segment replacement), and its recovery at open (recovery.py)
    cleaner       LogCleaner/Cleaner: compaction, through the log's public interface;
                  cleaner_manager.py keeps checkpoints and says which logs are due
    handles       SegmentFiles: the bounded cache of open segment files
    producer_state, txn_index   files the broker's producer-state manager owns
    config, errors              topic configs (Kafka's names and defaults) and the error tree
"""

from __future__ import annotations

from klamm.storage.cleaner import LogCleaner
from klamm.storage.config import (
    TOPIC_CONFIGS,
    ConfigDef,
    ConfigType,
    LogConfig,
    validate_topic_configs,
)
from klamm.storage.errors import (
    InvalidConfig,
    InvalidPartitions,
    InvalidTopicName,
    KafkaStorageError,
    LogClosed,
    OffsetOutOfRange,
    PolicyViolation,
    StorageError,
    TopicError,
    TopicExists,
    UnknownTopic,
)
from klamm.storage.handles import SegmentFiles
from klamm.storage.log import AppendResult, PartitionLog
from klamm.storage.log_manager import InternalTopic, LogManager, TopicInfo, validate_topic_name
from klamm.storage.producer_state import (
    BatchMetadata,
    ProducerEntry,
    Snapshot,
    discard_snapshot,
    load_latest_snapshot,
    open_directory,
    write_snapshot_at,
)
from klamm.storage.txn_index import AbortedTxn, TxnIndex

__all__ = [
    "TOPIC_CONFIGS",
    "AbortedTxn",
    "AppendResult",
    "BatchMetadata",
    "ConfigDef",
    "ConfigType",
    "InternalTopic",
    "InvalidConfig",
    "InvalidPartitions",
    "InvalidTopicName",
    "KafkaStorageError",
    "LogCleaner",
    "LogClosed",
    "LogConfig",
    "LogManager",
    "OffsetOutOfRange",
    "PartitionLog",
    "PolicyViolation",
    "ProducerEntry",
    "SegmentFiles",
    "Snapshot",
    "StorageError",
    "TopicError",
    "TopicExists",
    "TopicInfo",
    "TxnIndex",
    "UnknownTopic",
    "discard_snapshot",
    "load_latest_snapshot",
    "open_directory",
    "validate_topic_configs",
    "validate_topic_name",
    "write_snapshot_at",
]
