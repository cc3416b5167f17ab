"""The `_schemas` topic: a tail reader that replays every record into the state, and one writer.

Bytes: records.py (Confluent's format). The topic is compacted, with one partition, so its order is
the registry's history; it is created on first start if missing.

Concurrency contract (ids and versions allocated safely):
- Every registry sharing the topic writes through a transactional producer with the SAME
  `transactional.id` (`schema-registry-<topic>`). Kafka lets one producer epoch hold that id:
  `init_transactions()` by one registry fences every other, aborting any transaction they had open.
- A write is: become the writer (init_transactions, once, and again after being fenced) -> read the
  topic up to its end, read_committed -> `build()` decides the records from that complete state ->
  one transaction -> wait until the reader has replayed them. Any other registry writing in between
  must first fence us, so our commit fails and the whole step runs again on the new state: two
  registries never hand out one id or version twice (Confluent gets the same with a leader election
  and request forwarding; Kafka's producer fencing gives it without forwarding).
- Within one process a lock serialises writes; the reader thread is the only caller of
  `state.replay`.

Crash behaviour: a registry killed mid-write leaves an open transaction that the next writer's
init_transactions (or the transaction timeout) aborts; read_committed readers never see it. A
restart replays the topic from offset 0 before it answers (`start()` returns then).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka import admin as _rd_admin
from confluent_kafka.admin import AdminClient

from klamm.schema.errors import StoreError
from klamm.schema.state import RegistryState

log = logging.getLogger("klamm.schema")
# confluent_kafka.admin re-exports NewTopic and OffsetSpec without `__all__` (mypy --strict).
rd: Any = _rd_admin
T = TypeVar("T")
Write = list[tuple[bytes, bytes | None]]

DEFAULT_TOPIC = "_schemas"  # Confluent's kafkastore.topic default
# Seconds a write may take end to end before the request fails with 50002 (Confluent's
# kafkastore.timeout.ms is 500 ms for its own writes; a transaction takes a few round trips more).
WRITE_TIMEOUT = 30.0
STARTUP_TIMEOUT = 60.0  # seconds to reach the end of `_schemas` at start
FETCH_WAIT_MS = 50
WRITE_ATTEMPTS = 5  # fenced by a concurrent registry this many times in a row: give up (50001)


class MemoryLog:
    """A log that is a list: for unit tests of the REST API and the service, no Kafka."""

    def __init__(self, state: RegistryState) -> None:
        self.state = state
        self.records: Write = []
        self._lock = threading.Lock()

    def write(self, build: Callable[[], tuple[Write, T]]) -> T:
        with self._lock:
            writes, result = build()
            for key, value in writes:
                self.records.append((key, value))
                self.state.replay(key, value)
            return result


class KafkaLog:
    def __init__(
        self,
        bootstrap: str,
        state: RegistryState,
        topic: str = DEFAULT_TOPIC,
        client_config: dict[str, Any] | None = None,
    ) -> None:
        self.state = state
        self.topic = topic
        self._base = {"bootstrap.servers": bootstrap, **(client_config or {})}
        self._tp = TopicPartition(topic, 0)
        self._position = 0  # next offset the reader will apply (past control records too)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._write_lock = threading.Lock()
        self._failure: BaseException | None = None
        self._admin: AdminClient | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Create the topic if missing, then replay it to its end (blocking)."""
        self._ensure_topic()
        self._consumer = Consumer(
            {
                **self._base,
                "group.id": f"klamm-schema-registry-{uuid.uuid4()}",  # never joins: assign() only
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                # A write waits until the reader has replayed it; the commit marker that makes it
                # visible to read_committed may not wake a broker's long poll (klamm's does not
                # yet), so the poll is kept short: 20 idle fetches a second, not 500 ms a write.
                "fetch.wait.max.ms": FETCH_WAIT_MS,
            }
        )
        self._consumer.assign([TopicPartition(self.topic, 0, 0)])
        self._reader = threading.Thread(target=self._read, name="klamm-schemas-reader", daemon=True)
        self._reader.start()
        self._wait_for_end(STARTUP_TIMEOUT)

    def stop(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=10)
            self._reader = None
        if self._producer is not None:
            self._producer.flush(5)
            self._producer.close()
            self._producer = None
        self._admin = None  # librdkafka's admin client has no close: destroyed when released

    def _ensure_topic(self) -> None:
        self._admin = admin = AdminClient(self._base)
        new = rd.NewTopic(
            self.topic,
            num_partitions=1,
            replication_factor=-1,
            config={"cleanup.policy": "compact"},
        )
        try:
            admin.create_topics([new], request_timeout=STARTUP_TIMEOUT)[self.topic].result(
                STARTUP_TIMEOUT
            )
            log.info("created topic %s", self.topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise StoreError(f"cannot create topic {self.topic}: {exc.args[0].str()}") from None
        # As Confluent's registry: the log's order is the registry's history, which only a
        # single partition has. Refuse to start rather than read a part of it.
        metadata = admin.list_topics(self.topic, timeout=STARTUP_TIMEOUT).topics.get(self.topic)
        partitions = 0 if metadata is None else len(metadata.partitions)
        if partitions != 1:
            raise StoreError(
                f"topic {self.topic} has {partitions} partitions; the registry's topic needs "
                "exactly 1 (delete it or choose another with --topic)"
            )

    # --- reading ---------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.1)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        self._advance(msg.offset() or 0)
                    else:
                        log.warning("_schemas reader: %s", err.str())
                    continue
                self.state.replay(msg.key(), msg.value())
                self._advance((msg.offset() or 0) + 1)
        except BaseException as exc:  # a reader that died must fail writes, not hang them
            log.exception("_schemas reader stopped")
            with self._cond:
                self._failure = exc
                self._cond.notify_all()
        finally:
            consumer.close()

    def _advance(self, position: int) -> None:
        with self._cond:
            if position > self._position:
                self._position = position
                self._cond.notify_all()

    def _wait_for(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._position < offset:
                if self._failure is not None:
                    raise StoreError(f"the _schemas reader failed: {self._failure!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(f"timed out reading {self.topic} up to offset {offset}", 50002)
                self._cond.wait(min(left, 0.5))

    def _wait_for_end(self, timeout: float) -> None:
        # The end a read_committed reader reaches: the last stable offset. Asked through the admin
        # client: the consumer's own watermark query blocks while the reader thread polls it.
        assert self._admin is not None
        futures = self._admin.list_offsets(
            {self._tp: rd.OffsetSpec.latest()},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=timeout,
        )
        try:
            end = futures[self._tp].result(timeout).offset
        except KafkaException as exc:
            raise StoreError(f"cannot find the end of {self.topic}: {exc.args[0].str()}") from None
        self._wait_for(end, timeout)

    # --- writing ---------------------------------------------------------------------------------

    def write(self, build: Callable[[], tuple[Write, T]]) -> T:
        with self._write_lock:
            for _attempt in range(WRITE_ATTEMPTS):
                try:
                    return self._write_once(build)
                except KafkaException as exc:
                    error = exc.args[0]
                    log.info("_schemas write retried: %s", error.str())
                    if error.fatal() or error.code() in (
                        KafkaError._FENCED,
                        KafkaError.PRODUCER_FENCED,
                    ):
                        self._producer = None
                    elif self._producer is not None and error.txn_requires_abort():
                        self._producer.abort_transaction(WRITE_TIMEOUT)
            raise StoreError(f"could not write to {self.topic} after {WRITE_ATTEMPTS} attempts")

    def _write_once(self, build: Callable[[], tuple[Write, T]]) -> T:
        if self._producer is None:
            producer = Producer(
                {
                    **self._base,
                    "transactional.id": f"schema-registry-{self.topic}",
                    "linger.ms": 0,
                }
            )
            producer.init_transactions(WRITE_TIMEOUT)
            self._producer = producer
        producer = self._producer
        self._wait_for_end(WRITE_TIMEOUT)
        writes, result = build()  # raises RegistryError on a refused request: nothing written
        if not writes:
            return result
        offsets: list[int] = []
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                failures.append(err)
            else:
                offsets.append(msg.offset())

        producer.begin_transaction()
        for key, value in writes:
            producer.produce(self.topic, value=value, key=key, partition=0, on_delivery=delivered)
        producer.commit_transaction(WRITE_TIMEOUT)  # flushes; raises when fenced
        if failures:
            raise KafkaException(failures[0])
        self._wait_for(max(offsets) + 1, WRITE_TIMEOUT)
        return result
