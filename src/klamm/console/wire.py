"""The console's admin requests librdkafka does not offer: DescribeLogDirs (topic sizes),
ListTransactions, DescribeTransactions and DescribeProducers (KIP-664), and DescribeAcls, whose
error code librdkafka drops.

They go through klamm.client.wire, the one raw-protocol client, connected as the console's
librdkafka clients are (the same security.protocol, SASL login and TLS settings, from
klamm.client.config); this module only builds each request from kio. A broker that cannot answer,
or refuses the login, raises WireError, which the console shows on the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.types import TopicName
from kio.static.primitive import i8, i32

from klamm.client.wire import (
    DESCRIBE_ACLS,
    DESCRIBE_LOG_DIRS,
    DESCRIBE_PRODUCERS,
    DESCRIBE_TRANSACTIONS,
    LIST_TRANSACTIONS,
    RawClient,
    WireConfigError,
    WireError,
    request_type,
)

__all__ = ["DESCRIBE_LOG_DIRS", "Transport", "WireConfigError", "WireError"]

CLIENT_ID = "klamm-console"
# DescribeAcls' filter values that match every ACL (Kafka's ResourceType, PatternType,
# AclOperation and AclPermissionType ANY).
_ANY = i8(1)
# Seconds per connect and per wait for answer bytes: a page waits no longer for one broker.
TIMEOUT_S = 10.0


def _plaintext() -> RawClient:
    return RawClient(CLIENT_ID, None, TIMEOUT_S)


@dataclass(frozen=True)
class Transport:
    """How to reach brokers: PLAINTEXT unless made `from_config`."""

    _client: RawClient = field(default_factory=_plaintext)

    @classmethod
    def from_config(cls, conf: Mapping[str, Any]) -> Transport:
        """Connect as librdkafka does with `conf` (the console's own settings, made by
        klamm.client.config); WireConfigError for settings it cannot use (GSSAPI, OAUTHBEARER)."""
        return cls(RawClient.from_config(CLIENT_ID, conf, TIMEOUT_S))

    def describe_acls(self, host: str, port: int) -> Any:
        """Every ACL: a filter matching any resource, pattern, principal, host, operation."""
        body = request_type(DESCRIBE_ACLS)(
            resource_type_filter=_ANY, resource_name_filter=None, pattern_type_filter=_ANY,
            principal_filter=None, host_filter=None, operation=_ANY, permission_type=_ANY,
        )  # fmt: skip
        return self._client.request(host, port, DESCRIBE_ACLS, body)

    def describe_log_dirs(self, host: str, port: int) -> Any:
        body = request_type(DESCRIBE_LOG_DIRS)(topics=None)
        return self._client.request(host, port, DESCRIBE_LOG_DIRS, body)

    def list_transactions(self, host: str, port: int) -> Any:
        body = request_type(LIST_TRANSACTIONS)()
        return self._client.request(host, port, LIST_TRANSACTIONS, body)

    def describe_transactions(self, host: str, port: int, ids: list[str]) -> Any:
        body = request_type(DESCRIBE_TRANSACTIONS)(transactional_ids=tuple(ids))
        return self._client.request(host, port, DESCRIBE_TRANSACTIONS, body)

    def describe_producers(self, host: str, port: int, topic: str, partitions: list[int]) -> Any:
        body = DescribeProducersRequest(
            topics=(
                TopicRequest(
                    name=TopicName(topic), partition_indexes=tuple(i32(p) for p in partitions)
                ),
            )
        )
        return self._client.request(host, port, DESCRIBE_PRODUCERS, body)
