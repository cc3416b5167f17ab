"""`Kafka`: the entry point, like KafkaJS's `new Kafka({...})`. It holds the shared connection
settings and makes producers, consumers and admins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from klamm.client.admin import Admin
from klamm.client.config import client_config
from klamm.client.consumer import Consumer, PartitionAssigners
from klamm.client.partitioners import PartitionerFactory
from klamm.client.producer import Producer
from klamm.client.retry import RetryPolicy


class Kafka:
    def __init__(
        self,
        *,
        brokers: str | Sequence[str],
        client_id: str = "klamm",
        ssl: bool | Mapping[str, Any] | None = None,
        sasl: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        connection_timeout_ms: int = 1_000,
        request_timeout_ms: int = 30_000,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """`config` passes raw librdkafka properties to every client made from this one."""
        self.client_id = client_id
        self.retry = retry or RetryPolicy()
        # How long connect() tries to reach the cluster: as KafkaJS, one connection timeout per
        # attempt, retried as the retry policy says (1 s x 6 attempts by default).
        self._connect_timeout_s = (
            max(connection_timeout_ms, 1_000) * (self.retry.retries + 1) / 1000
        )
        self._conf = client_config(
            client_id=client_id,
            brokers=brokers,
            ssl=ssl,
            sasl=sasl,
            retry=self.retry,
            connection_timeout_ms=connection_timeout_ms,
            request_timeout_ms=request_timeout_ms,
            extra=config,
        )

    def producer(
        self,
        *,
        idempotent: bool = False,
        transactional_id: str | None = None,
        transaction_timeout_ms: int = 60_000,
        max_in_flight_requests: int | None = None,
        allow_auto_topic_creation: bool = True,
        linger_ms: float | None = None,
        retry: RetryPolicy | None = None,
        create_partitioner: PartitionerFactory | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Producer:
        """`retry` (default: this Kafka's) bounds how long a send may take before it fails
        with NumberOfRetriesExceeded, as KafkaJS's producer retry does (see
        RetryPolicy.delivery_timeout_ms). `create_partitioner` is KafkaJS's: a factory such as
        `Partitioners.LegacyPartitioner`, or your own (see klamm.client.partitioners)."""
        return Producer(
            self._conf,
            idempotent=idempotent,
            transactional_id=transactional_id,
            transaction_timeout_ms=transaction_timeout_ms,
            max_in_flight_requests=max_in_flight_requests,
            allow_auto_topic_creation=allow_auto_topic_creation,
            linger_ms=linger_ms,
            config=config,
            connect_timeout_s=self._connect_timeout_s,
            retry=retry or self.retry,
            create_partitioner=create_partitioner,
        )

    def consumer(
        self,
        *,
        group_id: str,
        partition_assigners: Sequence[PartitionAssigners] = (PartitionAssigners.ROUND_ROBIN,),
        session_timeout_ms: int = 30_000,
        rebalance_timeout_ms: int = 60_000,
        heartbeat_interval_ms: int = 3_000,
        metadata_max_age_ms: int = 300_000,
        allow_auto_topic_creation: bool = True,
        max_bytes_per_partition: int = 1_048_576,
        min_bytes: int = 1,
        max_bytes: int = 10_485_760,
        max_wait_time_ms: int = 500,
        retry: RetryPolicy | None = None,
        read_uncommitted: bool = False,
        group_instance_id: str | None = None,
        rack_id: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Consumer:
        """`retry` is the handler retry policy used by `run()` (default: this Kafka's)."""
        return Consumer(
            self._conf,
            group_id=group_id,
            producer_factory=lambda: self.producer(idempotent=True),
            partition_assigners=partition_assigners,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            metadata_max_age_ms=metadata_max_age_ms,
            allow_auto_topic_creation=allow_auto_topic_creation,
            max_bytes_per_partition=max_bytes_per_partition,
            min_bytes=min_bytes,
            max_bytes=max_bytes,
            max_wait_time_ms=max_wait_time_ms,
            retry=retry or self.retry,
            read_uncommitted=read_uncommitted,
            group_instance_id=group_instance_id,
            rack_id=rack_id,
            config=config,
            connect_timeout_s=self._connect_timeout_s,
        )

    def admin(self, *, config: Mapping[str, Any] | None = None) -> Admin:
        """`config` passes raw librdkafka properties to this admin only."""
        # The admin's metadata reads must never create a topic (KafkaJS's admin sets
        # allowAutoTopicCreation: false); `config` here may still turn it back on.
        conf = {**self._conf, "allow.auto.create.topics": False}
        if config:
            conf.update(config)
        return Admin(conf, connect_timeout_s=self._connect_timeout_s)
