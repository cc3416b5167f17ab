"""klamm's client: KafkaJS's developer experience in Python, on librdkafka.

Importing this package must never import the broker or storage layers (tested)."""

from __future__ import annotations

from klamm.client.acls import (
    AclOperationTypes,
    AclPermissionTypes,
    AclResourceTypes,
    ResourcePatternTypes,
)
from klamm.client.admin import Admin
from klamm.client.admin_args import ResourceTypes
from klamm.client.consumer import Consumer, PartitionAssigners
from klamm.client.errors import (
    AuthenticationError,
    ConfigError,
    DeleteGroupsError,
    DeleteTopicRecordsError,
    FatalError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NonRetriableError,
    NumberOfRetriesExceeded,
    OffsetOutOfRange,
    ProducerFencedError,
    RequestError,
    RetriableError,
    StateError,
    TopicError,
    TransactionAbortableError,
)
from klamm.client.events import Event, Events
from klamm.client.kafka import Kafka
from klamm.client.messages import CompressionTypes, KafkaMessage, Message, RecordMetadata
from klamm.client.partitioners import Partitioners
from klamm.client.payloads import Batch, EachBatchPayload, EachMessagePayload
from klamm.client.producer import Producer
from klamm.client.retry import RetryPolicy
from klamm.client.transactions import Transaction

__all__ = [
    "AclOperationTypes",
    "AclPermissionTypes",
    "AclResourceTypes",
    "Admin",
    "AuthenticationError",
    "Batch",
    "CompressionTypes",
    "ConfigError",
    "Consumer",
    "DeleteGroupsError",
    "DeleteTopicRecordsError",
    "EachBatchPayload",
    "EachMessagePayload",
    "Event",
    "Events",
    "FatalError",
    "Kafka",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaMessage",
    "KafkaTimeoutError",
    "Message",
    "NonRetriableError",
    "NumberOfRetriesExceeded",
    "OffsetOutOfRange",
    "PartitionAssigners",
    "Partitioners",
    "Producer",
    "ProducerFencedError",
    "RecordMetadata",
    "RequestError",
    "ResourcePatternTypes",
    "ResourceTypes",
    "RetriableError",
    "RetryPolicy",
    "StateError",
    "TopicError",
    "Transaction",
    "TransactionAbortableError",
]
