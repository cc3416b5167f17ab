"""The API versions klamm serves: Kafka 4.1 minimums, maxima just above what real clients send.

Source: research/brokers.md §6. Two deliberate oddities, both copied from Apache Kafka:
- Produce advertises v0 although v0-2 requests are answered with UNSUPPORTED_VERSION (KAFKA-18659):
  librdkafka < 2.11.1 (Debian's kcat) only compresses when Produce v0 is in the broker's range.
- JoinGroup advertises v0-1 (KAFKA-19444): old librdkafka's feature checks need JoinGroup 0.

Maxima stop below the versions that address topics by id (Fetch 13, Produce 13, DeleteTopics 6
by id still works by name) and below KIP-848 / transaction-version-2 forms no client here uses.
"""

from __future__ import annotations

from typing import NamedTuple


class VersionRange(NamedTuple):
    min: int
    max: int

    def __contains__(self, version: object) -> bool:
        return isinstance(version, int) and self.min <= version <= self.max


class ApiKey:
    """Kafka API keys, by name (only those klamm serves)."""

    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    WRITE_TXN_MARKERS = 27
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    DESCRIBE_LOG_DIRS = 35
    SASL_AUTHENTICATE = 36
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    INCREMENTAL_ALTER_CONFIGS = 44
    ALTER_PARTITION_REASSIGNMENTS = 45
    LIST_PARTITION_REASSIGNMENTS = 46
    OFFSET_DELETE = 47
    DESCRIBE_CLUSTER = 60
    DESCRIBE_PRODUCERS = 61
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66
    DESCRIBE_TOPIC_PARTITIONS = 75


# What the protocol layer can decode and encode. The broker advertises the subset it has
# handlers for (see klamm.broker.router).
SUPPORTED: dict[int, VersionRange] = {
    ApiKey.PRODUCE: VersionRange(0, 9),
    ApiKey.FETCH: VersionRange(4, 12),
    ApiKey.LIST_OFFSETS: VersionRange(1, 7),
    ApiKey.METADATA: VersionRange(0, 12),
    ApiKey.OFFSET_COMMIT: VersionRange(2, 8),
    ApiKey.OFFSET_FETCH: VersionRange(1, 8),
    ApiKey.FIND_COORDINATOR: VersionRange(0, 4),
    ApiKey.JOIN_GROUP: VersionRange(0, 7),
    ApiKey.HEARTBEAT: VersionRange(0, 4),
    ApiKey.LEAVE_GROUP: VersionRange(0, 4),
    ApiKey.SYNC_GROUP: VersionRange(0, 5),
    ApiKey.DESCRIBE_GROUPS: VersionRange(0, 5),
    ApiKey.LIST_GROUPS: VersionRange(0, 4),
    ApiKey.SASL_HANDSHAKE: VersionRange(0, 1),
    ApiKey.API_VERSIONS: VersionRange(0, 4),
    ApiKey.CREATE_TOPICS: VersionRange(2, 7),
    ApiKey.DELETE_TOPICS: VersionRange(1, 6),
    ApiKey.DELETE_RECORDS: VersionRange(0, 2),
    ApiKey.INIT_PRODUCER_ID: VersionRange(0, 4),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: VersionRange(2, 4),
    ApiKey.ADD_PARTITIONS_TO_TXN: VersionRange(0, 3),
    ApiKey.ADD_OFFSETS_TO_TXN: VersionRange(0, 3),
    ApiKey.END_TXN: VersionRange(0, 3),
    # Kafka 4 serves 1-2 (v0 was removed by KIP-896); v2 only adds the marker's transaction
    # version, which is the same control record for us. Operators' tools send it to end a
    # hanging transaction (kafka-transactions.sh abort, klamm transactions abort).
    ApiKey.WRITE_TXN_MARKERS: VersionRange(1, 2),
    ApiKey.TXN_OFFSET_COMMIT: VersionRange(0, 3),
    # Kafka 4 serves 1-3 (v0 removed by KIP-896); v2 is the flexible form.
    ApiKey.DESCRIBE_ACLS: VersionRange(1, 3),
    ApiKey.CREATE_ACLS: VersionRange(1, 3),
    ApiKey.DELETE_ACLS: VersionRange(1, 3),
    ApiKey.DESCRIBE_CONFIGS: VersionRange(1, 4),
    ApiKey.ALTER_CONFIGS: VersionRange(0, 2),
    # Kafka 4 serves 1-4 (v0 removed by KIP-896).
    ApiKey.DESCRIBE_LOG_DIRS: VersionRange(1, 4),
    ApiKey.SASL_AUTHENTICATE: VersionRange(0, 2),
    ApiKey.CREATE_PARTITIONS: VersionRange(0, 3),
    ApiKey.DELETE_GROUPS: VersionRange(0, 2),
    # Kafka 4.1's ranges for the replica-placement APIs (ElectLeaders 0-2; AlterPartition-
    # Reassignments v1 adds allow_replication_factor_change, KIP-860).
    ApiKey.ELECT_LEADERS: VersionRange(0, 2),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: VersionRange(0, 1),
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: VersionRange(0, 1),
    ApiKey.LIST_PARTITION_REASSIGNMENTS: VersionRange(0, 0),
    ApiKey.OFFSET_DELETE: VersionRange(0, 0),
    ApiKey.DESCRIBE_CLUSTER: VersionRange(0, 1),
    ApiKey.DESCRIBE_PRODUCERS: VersionRange(0, 0),
    ApiKey.DESCRIBE_TRANSACTIONS: VersionRange(0, 0),
    ApiKey.LIST_TRANSACTIONS: VersionRange(0, 1),
    # Kafka 4's paginated topic description (KIP-966); librdkafka >= 2.10 and Kafka 4's Java
    # admin describe topics with it when the broker offers it.
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: VersionRange(0, 0),
}

# Advertised but answered with UNSUPPORTED_VERSION without decoding the body (see module doc).
ADVERTISED_ONLY: dict[int, VersionRange] = {
    ApiKey.PRODUCE: VersionRange(0, 2),
}
