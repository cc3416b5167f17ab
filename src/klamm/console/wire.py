"""The console's admin requests librdkafka does not offer: DescribeLogDirs (topic sizes),
ListTransactions, DescribeTransactions and DescribeProducers (KIP-664).

They go through klamm.client.wire, the one raw-protocol client; this module only turns the
console's `ssl` setting into its TLS context and builds each request from kio. PLAINTEXT and
SSL, not SASL: the console does not make a Transport when it logs in with SASL, and its
transactions page says so. A broker that cannot answer raises WireError, which the console shows
on the page.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.types import TopicName
from kio.static.primitive import i32

from klamm.client.wire import (
    DESCRIBE_LOG_DIRS,
    DESCRIBE_PRODUCERS,
    DESCRIBE_TRANSACTIONS,
    LIST_TRANSACTIONS,
    RawClient,
    WireError,
    request_type,
)

__all__ = ["DESCRIBE_LOG_DIRS", "Transport", "WireError"]

CLIENT_ID = "klamm-console"
# Seconds per connect and per wait for answer bytes: a page waits no longer for one broker.
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Transport:
    """How to reach brokers: TLS or not, from the console's `ssl` setting."""

    tls: ssl.SSLContext | None = None

    @classmethod
    def from_settings(cls, ssl_settings: bool | Mapping[str, Any] | None) -> Transport:
        if not ssl_settings:
            return cls(None)
        options = ssl_settings if isinstance(ssl_settings, Mapping) else {}
        context = ssl.create_default_context(cafile=options.get("ca_location"))
        if options.get("reject_unauthorized") is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if options.get("check_hostname") is False:
            context.check_hostname = False
        if options.get("certificate_location"):
            context.load_cert_chain(options["certificate_location"], options.get("key_location"))
        return cls(context)

    @property
    def _client(self) -> RawClient:
        return RawClient(CLIENT_ID, self.tls, TIMEOUT_S)

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
