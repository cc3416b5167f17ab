"""The producer's API: `send` / `send_batch` with per-send acks, compression and timeout.

Concurrency contract. `confluent_kafka.Producer.produce` only enqueues, so it is called on the event
loop thread. Delivery reports are served on the loop too, by `poll(0)` (never blocks) every
millisecond while messages are in flight (`_RdProducer`); each report is recorded on the
`_Delivery` of its send() call, and the last one resolves that call's future. Only disconnect()'s
final flush serves reports on a worker thread, after the loop stopped serving them, so reports are
never served by two threads at once.

Fatal errors. An idempotent or transactional librdkafka producer can fail for good (fenced by a
newer instance, a broken idempotence sequence). confluent-kafka reports the cause once, as a
KafkaException out of poll() or flush(); librdkafka refuses every later call with _FATAL and no
cause. `_RdProducer.serve` catches that one report, keeps it as `fatal`, purges what the instance
still holds (it can never be delivered) and keeps serving reports, so every pending send fails at
once, and every later send fails before producing, with the mapped cause (ProducerFencedError).

Per-send acks and compression. librdkafka fixes both per producer instance, while KafkaJS takes
them per send(). We keep one librdkafka producer per (acks, compression) pair actually used,
created on first use; the common case uses only the default one. A transactional producer cannot
do this (a transaction belongs to one instance), so there a non-default pair is a ConfigError.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import confluent_kafka

from klamm.client.config import acks_value
from klamm.client.config import timeout_ms as check_timeout
from klamm.client.connectivity import reach_cluster
from klamm.client.errors import (
    ConfigError,
    KafkaError,
    KafkaTimeoutError,
    NumberOfRetriesExceeded,
    StateError,
    from_librdkafka,
    unknown_topic,
)
from klamm.client.events import Connectable, EventEmitter, Events
from klamm.client.messages import (
    CompressionTypes,
    OutgoingRecord,
    RecordMetadata,
    normalise_message,
    prepare_message,
)
from klamm.client.partitioners import Partitioner, PartitionerFactory, Partitioners
from klamm.client.producer.delivery import Delivery, MultiTopicDelivery
from klamm.client.producer.plan import (
    ANY_PARTITION,
    RUN_SIZE,
    MessageInput,
    Plan,
    compression_type,
    prepare_send,
)
from klamm.client.producer.pump import PUMP_INTERVAL_S, QUEUE_FULL_WAIT_S, RdProducer
from klamm.client.retry import RetryPolicy

if TYPE_CHECKING:
    from klamm.client.transactions import Transaction

log = logging.getLogger("klamm.client")

# A Python partitioner's view of a topic's partitions is refreshed this often: KafkaJS's
# metadataMaxAge default (5 minutes): partitions added to a topic are used after that.
_METADATA_MAX_AGE_S = 300.0
# One metadata request for a Python partitioner waits at most this long before it is retried.
_METADATA_WAIT_S = 5.0

# What one attempt costs when no broker answers: librdkafka's connection setup timeout (Kafka
# sets it from connection_timeout_ms), librdkafka's default when a raw config left it out.
_ATTEMPT_KEY = "socket.connection.setup.timeout.ms"
_ATTEMPT_DEFAULT_MS = 30_000


def _drop_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # marks the exception retrieved


class Producer(Connectable):
    """KafkaJS's producer. Create it with `Kafka.producer()`, which holds the defaults."""

    def __init__(
        self,
        conf: dict[str, Any],
        *,
        idempotent: bool,
        transactional_id: str | None,
        transaction_timeout_ms: int,
        max_in_flight_requests: int | None,
        allow_auto_topic_creation: bool,
        linger_ms: float | None,
        config: Mapping[str, Any] | None,
        connect_timeout_s: float,
        retry: RetryPolicy | None = None,
        create_partitioner: PartitionerFactory | None = None,
    ) -> None:
        conf = dict(conf)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigError(f"retry must be a RetryPolicy, not {retry!r}")
        if transactional_id is not None and (
            not isinstance(transactional_id, str) or not transactional_id
        ):
            raise ConfigError(f"transactional_id must be a non-empty str, not {transactional_id!r}")
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(f"config must be a dict of librdkafka properties, not {config!r}")
        self._retry = retry = retry or RetryPolicy()
        # KafkaJS's DefaultPartitioner is librdkafka's murmur2_random for keyed messages: leave
        # it to librdkafka (in C). Any other partitioner runs in Python (partitioners.py).
        self._partitioner: Partitioner | None = None
        if create_partitioner is not None and create_partitioner is not (
            Partitioners.DefaultPartitioner
        ):
            if not callable(create_partitioner):
                raise ConfigError(
                    "create_partitioner must be a factory returning a partitioner, such as "
                    f"Partitioners.LegacyPartitioner; got {create_partitioner!r}"
                )
            self._partitioner = create_partitioner()
            if not callable(self._partitioner):
                raise ConfigError(
                    f"create_partitioner() must return a callable, got {self._partitioner!r}"
                )
        self._metadata: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._connect_timeout_s = connect_timeout_s
        if transactional_id is not None:
            idempotent = True  # librdkafka requires it, and so does Kafka.
            conf["transactional.id"] = transactional_id
            conf["transaction.timeout.ms"] = check_timeout(
                transaction_timeout_ms, "transaction_timeout_ms"
            )
        conf["enable.idempotence"] = idempotent
        # Java's and KafkaJS's DefaultPartitioner: the same key lands on the same partition as it
        # would from a KafkaJS or Java producer (librdkafka's own default, CRC32, would not).
        conf["partitioner"] = "murmur2_random"
        conf["allow.auto.create.topics"] = allow_auto_topic_creation
        if max_in_flight_requests is not None:
            conf["max.in.flight.requests.per.connection"] = max_in_flight_requests
        if linger_ms is not None:
            conf["linger.ms"] = linger_ms
        if config:
            conf.update(config)
        # KafkaJS's retry policy reaches send() through librdkafka's delivery timeout (which
        # covers queueing, retries and waiting for a missing topic's metadata): a send fails when
        # KafkaJS's retrier would have given up (RetryPolicy.delivery_timeout_ms), unless the
        # caller set librdkafka's own timeouts.
        attempt_ms = int(conf.get(_ATTEMPT_KEY, _ATTEMPT_DEFAULT_MS))
        budget_ms = retry.delivery_timeout_ms(attempt_ms)
        if transactional_id is not None:  # librdkafka refuses a longer one
            budget_ms = min(budget_ms, int(conf["transaction.timeout.ms"]))
        if "message.timeout.ms" not in conf and "delivery.timeout.ms" not in conf:
            conf["message.timeout.ms"] = budget_ms
        # How long librdkafka waits for a missing topic to appear before failing its messages
        # with UNKNOWN_TOPIC: one attempt short of the delivery timeout, so a missing topic says
        # so instead of failing as a plain timeout.
        conf.setdefault("topic.metadata.propagation.max.ms", max(1, budget_ms - attempt_ms))
        self._conf = conf
        self.idempotent = idempotent
        self.transactional_id = transactional_id
        self.events = EventEmitter("producer")
        self._rd: dict[tuple[int, str], RdProducer] = {}
        self._default_key = (-1, CompressionTypes.NONE.value)
        self._connected = False
        self._in_transaction = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Create the librdkafka producer and, when transactional, register the transactional id
        with the coordinator (fencing older instances)."""
        if self._connected:
            return
        loop = asyncio.get_running_loop()
        rdp = self._rd_for(*self._default_key)
        try:
            await loop.run_in_executor(
                None, reach_cluster, rdp.rd, rdp.auth, self._connect_timeout_s
            )
            if self.transactional_id is not None:
                timeout_s = self._conf.get("transaction.timeout.ms", 60_000) / 1000
                try:
                    await loop.run_in_executor(None, rdp.rd.init_transactions, timeout_s)
                except confluent_kafka.KafkaException as exc:
                    raise from_librdkafka(exc) from None
        except KafkaError:
            rdp.cancel_pump()
            await loop.run_in_executor(None, rdp.close, 0)
            self._rd.clear()
            raise
        self._connected = True
        self.events.emit(Events.CONNECT)

    async def disconnect(self, timeout_ms: int = 30_000) -> None:
        """Deliver what is queued (up to `timeout_ms`), then release the producers."""
        timeout_ms = check_timeout(timeout_ms)
        if not self._rd:
            return
        loop = asyncio.get_running_loop()
        rds, self._rd = list(self._rd.values()), {}
        self._connected = False
        left = 0
        for rdp in rds:
            rdp.cancel_pump()
            left += await loop.run_in_executor(None, rdp.close, timeout_ms / 1000)
        if left:
            log.warning("producer disconnected with %d undelivered messages", left)
        self.events.emit(Events.DISCONNECT)

    def is_connected(self) -> bool:
        return self._connected

    # -- sending ------------------------------------------------------------------------------

    async def send(
        self,
        *,
        topic: str,
        messages: Sequence[MessageInput],
        acks: int | str = -1,
        compression: CompressionTypes | str | int | None = None,
        timeout_ms: int | None = None,
    ) -> Sequence[RecordMetadata]:
        """Produce `messages` to `topic` and wait until all are acknowledged (per `acks`).

        Returns one RecordMetadata per message: for each partition in the order given, partitions
        in the order the broker acknowledged them. `compression` is a CompressionTypes member, its
        value ("gzip"), or KafkaJS's number (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd). `timeout_ms`
        bounds the wait; when it expires KafkaTimeoutError is raised (messages already handed to
        librdkafka may still be delivered later, as with any Kafka client)."""
        self._check_sendable()
        plan = prepare_send([{"topic": topic, "messages": messages}])
        if self._partitioner is not None:
            plan = await self._partitioned(plan)
        if timeout_ms is not None:
            timeout_ms = check_timeout(timeout_ms)
        return await self._send(plan, acks, compression, timeout_ms)

    async def send_batch(
        self,
        *,
        topic_messages: Sequence[Mapping[str, Any]],
        acks: int | str = -1,
        compression: CompressionTypes | str | int | None = None,
        timeout_ms: int | None = None,
    ) -> Sequence[RecordMetadata]:
        """Produce to several topics at once: `[{"topic": t, "messages": [...]}, ...]`."""
        self._check_sendable()
        plan = prepare_send(topic_messages)
        if self._partitioner is not None:
            plan = await self._partitioned(plan)
        if timeout_ms is not None:
            timeout_ms = check_timeout(timeout_ms)
        return await self._send(plan, acks, compression, timeout_ms)

    async def _send(
        self,
        plan: Plan,
        acks: int | str,
        compression: CompressionTypes | str | int | None,
        timeout_ms: int | None,
    ) -> Sequence[RecordMetadata]:
        rdp = self._rd_for(acks_value(acks), compression_type(compression))
        if rdp.fatal is not None:  # this instance failed for good: say why, produce nothing
            raise from_librdkafka(rdp.fatal)
        total = sum(len(items) for _, items, _ in plan)
        if not total:
            return []
        loop = asyncio.get_running_loop()
        delivery = (
            Delivery(loop, total, plan[0][0], rdp)
            if len(plan) == 1
            else MultiTopicDelivery(loop, total, None, rdp)
        )
        enqueued = 0
        for topic, items, plain in plan:
            if plain:
                try:
                    enqueued = await self._produce_plain(rdp, topic, items, delivery, enqueued)
                except TypeError:
                    # produce_batch refused a key or value type before enqueuing anything (only
                    # possible for a one-call send, see _prepare): normalise, which converts
                    # what it can (bytearray, ...) and raises ConfigError for the rest.
                    items = [prepare_message(m) for m in items]
                    plain = False
            if not plain:
                enqueued = await self._enqueue_prepared(rdp, topic, items, delivery, enqueued)
            if enqueued < 0:
                return await delivery.future
        rdp.wake(loop)
        if timeout_ms is None:
            return await delivery.future
        try:
            return await asyncio.wait_for(asyncio.shield(delivery.future), timeout_ms / 1000)
        except TimeoutError:
            if rdp.auth.error is not None:  # the login was refused since connect()
                raise from_librdkafka(rdp.auth.error) from None
            raise KafkaTimeoutError(f"send not acknowledged within {timeout_ms} ms") from None
        finally:
            if not delivery.future.done():
                # Nobody awaits the delivery any more (timed out, or the caller was cancelled):
                # its outcome, when librdkafka reports it, is dropped on purpose, not logged by
                # asyncio as "Future exception was never retrieved".
                delivery.future.add_done_callback(_drop_outcome)

    async def _partitioned(self, plan: Plan) -> Plan:
        """Every message of `plan` with its partition, chosen by the Python partitioner for
        those that name none (KafkaJS calls its partitioner the same way, per message)."""
        assert self._partitioner is not None
        out: Plan = []
        for topic, items, _plain in plan:
            metadata = await self._partition_metadata(topic)
            records = []
            for item in items:
                record = item if isinstance(item, OutgoingRecord) else normalise_message(item)
                if record.partition is None:
                    shown = item if isinstance(item, dict) else record._asdict()
                    chosen = self._partitioner(
                        topic=topic, partition_metadata=metadata, message=shown
                    )
                    if isinstance(chosen, bool) or not isinstance(chosen, int):
                        raise ConfigError(f"the partitioner returned {chosen!r}, not an int")
                    if not 0 <= chosen < len(metadata):
                        raise ConfigError(
                            f"the partitioner chose partition {chosen} of {topic!r}, which has "
                            f"{len(metadata)} partitions"
                        )
                    record = record._replace(partition=chosen)
                records.append(record)
            out.append((topic, records, False))
        return out

    async def _partition_metadata(self, topic: str) -> list[dict[str, Any]]:
        """The topic's partitions as KafkaJS's partitioners see them, cached for
        `_METADATA_MAX_AGE_S`. Waits (as KafkaJS retries) for a topic being created."""
        loop = asyncio.get_running_loop()
        cached = self._metadata.get(topic)
        if cached is not None and loop.time() - cached[0] < _METADATA_MAX_AGE_S:
            return cached[1]
        rd = self._rd_for(*self._default_key).rd
        timeout_ms = self._conf.get("message.timeout.ms", self._conf.get("delivery.timeout.ms"))
        deadline = loop.time() + int(timeout_ms or 300_000) / 1000
        error: KafkaError = unknown_topic(topic)
        while True:
            try:
                md = await loop.run_in_executor(None, rd.list_topics, topic, _METADATA_WAIT_S)
                found = md.topics.get(topic)
                if found is not None and found.error is not None:
                    error = from_librdkafka(found.error)
                elif found is not None and found.partitions:
                    partitions = [
                        {
                            "partition_id": p.id,
                            "leader": p.leader,
                            "replicas": list(p.replicas),
                            "isr": list(p.isrs),
                        }
                        for p in sorted(found.partitions.values(), key=lambda p: p.id)
                    ]
                    self._metadata[topic] = (loop.time(), partitions)
                    return partitions
            except confluent_kafka.KafkaException as exc:
                error = from_librdkafka(exc)
            if not error.retriable or loop.time() >= deadline:
                if not error.retriable:
                    raise error
                raise NumberOfRetriesExceeded(
                    error, retry_count=self._retry.retries, retry_time_ms=0
                ) from error
            await asyncio.sleep(max(self._retry.initial_retry_time_ms, 1) / 1000)

    async def _produce_plain(
        self,
        rdp: RdProducer,
        topic: str,
        items: list[dict[str, Any]],
        delivery: Delivery,
        enqueued: int,
    ) -> int:
        """The caller's dicts go to librdkafka as they are, one produce_batch call per run (the
        per-message work then happens in C: 1.7x the speed of a produce() loop)."""
        if len(items) <= RUN_SIZE:
            return await self._produce_run(rdp, topic, ANY_PARTITION, items, delivery, enqueued)
        for first in range(0, len(items), RUN_SIZE):
            if first:
                await asyncio.sleep(0)  # let the loop breathe between the runs of a huge send
            run = items[first : first + RUN_SIZE]
            enqueued = await self._produce_run(rdp, topic, ANY_PARTITION, run, delivery, enqueued)
            if enqueued < 0:
                break
        return enqueued

    async def _enqueue_prepared(
        self,
        rdp: RdProducer,
        topic: str,
        items: list[dict[str, Any] | OutgoingRecord],
        delivery: Delivery,
        enqueued: int,
    ) -> int:
        """Enqueue one topic's prepared messages in order. Runs of plain dicts still share a
        produce_batch call; produce_batch carries neither headers nor timestamps, and applies a
        per-message partition only as the whole call's, so such messages go one by one (or in a
        run of one partition). Returns the running enqueued count, or -1 (see _produce_run)."""
        loop = asyncio.get_running_loop()
        produce, report = rdp.rd.produce, delivery.report
        run: list[dict[str, Any]] = []
        run_partition = ANY_PARTITION
        for item in items:
            if type(item) is dict:
                target, fields = ANY_PARTITION, item
            else:
                key, value, headers, partition, timestamp = cast(OutgoingRecord, item)
                target = ANY_PARTITION if partition is None else partition
                fields = None  # not for produce_batch: sent below, one by one
                if headers is None and timestamp is None:
                    fields = {"value": value} if key is None else {"value": value, "key": key}
            if run and (fields is None or target != run_partition or len(run) >= RUN_SIZE):
                enqueued = await self._produce_run(
                    rdp, topic, run_partition, run, delivery, enqueued
                )
                if enqueued < 0:
                    return enqueued
                run = []
                await asyncio.sleep(0)  # let the loop breathe between runs
            if fields is not None:
                run_partition = target
                run.append(fields)
                continue
            kwargs: dict[str, Any] = {"headers": headers}
            if partition is not None:
                kwargs["partition"] = partition
            if timestamp is not None:
                kwargs["timestamp"] = timestamp
            while True:
                try:
                    produce(topic, value, key, on_delivery=report, **kwargs)
                    enqueued += 1
                    break
                except BufferError:
                    # The local queue is full until delivered reports are served: serve them.
                    await self._wait_for_queue(rdp, loop)
                except confluent_kafka.KafkaException as exc:
                    self._give_up(delivery, exc, delivery.remaining_unsent(enqueued), enqueued)
                    return -1
        if run:
            enqueued = await self._produce_run(rdp, topic, run_partition, run, delivery, enqueued)
        return enqueued

    async def _produce_run(
        self,
        rdp: RdProducer,
        topic: str,
        partition: int,
        run: list[dict[str, Any]],
        delivery: Delivery,
        enqueued: int,
    ) -> int:
        """Enqueue one run with produce_batch; returns the running count of enqueued messages,
        or -1 when the send had to be abandoned (its future then carries the error)."""
        loop = asyncio.get_running_loop()
        pending = run
        while pending:
            try:
                queued = rdp.rd.produce_batch(
                    topic, pending, partition=partition, on_delivery=delivery.report
                )
            except BufferError:
                queued = 0
            except confluent_kafka.KafkaException as exc:
                self._give_up(delivery, exc, delivery.remaining_unsent(enqueued), enqueued)
                return -1
            enqueued += queued
            if queued == len(pending):
                break
            # librdkafka marks each message it refused with "_error". A full queue refuses a
            # tail of the run: wait for reports to drain it and retry that tail. Any other
            # refusal fails just that message, like a failed delivery.
            retry = []
            for message in pending:
                error = message.pop("_error", None)
                if error is None and queued == 0:
                    retry.append(message)  # BufferError: nothing of this attempt was taken
                elif error is None:
                    continue
                elif error.code() == confluent_kafka.KafkaError._QUEUE_FULL:
                    retry.append(message)
                else:
                    delivery.report(error, None)
                    enqueued += 1
            pending = retry
            if pending:
                await self._wait_for_queue(rdp, loop)
        rdp.wake(loop)
        return enqueued

    @staticmethod
    async def _wait_for_queue(rdp: RdProducer, loop: asyncio.AbstractEventLoop) -> None:
        rdp.serve()
        rdp.wake(loop)
        await asyncio.sleep(QUEUE_FULL_WAIT_S)

    @staticmethod
    def _give_up(
        delivery: Delivery, exc: confluent_kafka.KafkaException, unsent: int, enqueued: int
    ) -> None:
        """produce refused for good: the unsent messages will never get a report."""
        delivery.abandon(unsent)
        if enqueued == 0:
            raise delivery.failure(exc.args[0] if exc.args else exc) from None
        delivery.error = delivery.error or exc.args[0]

    async def flush(self, timeout_ms: int = 30_000) -> None:
        """Wait until everything queued so far is delivered (reports served on the loop)."""
        timeout_ms = check_timeout(timeout_ms)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        for rdp in list(self._rd.values()):
            while len(rdp.rd) > 0:
                rdp.serve()
                if loop.time() > deadline:
                    raise KafkaTimeoutError(
                        f"{len(rdp.rd)} messages not delivered within {timeout_ms} ms"
                    )
                await asyncio.sleep(PUMP_INTERVAL_S)

    # -- transactions -------------------------------------------------------------------------

    def transaction(self) -> Transaction:
        """`async with producer.transaction() as txn:` (commits on exit, aborts on error), or
        `txn = await producer.transaction()` then `await txn.commit()` / `await txn.abort()`."""
        from klamm.client.transactions import Transaction

        if self.transactional_id is None:
            raise ConfigError("transaction() needs kafka.producer(transactional_id=...)")
        self._check_connected()
        return Transaction(self)

    # The librdkafka side of a transaction. `Transaction` (transactions.py) owns the states and
    # calls these; the producer owns whether a transaction is open, so exactly one can be.

    def begin_transaction(self) -> None:
        """Open a transaction on the transactional librdkafka producer (local, cheap)."""
        if self._in_transaction:
            raise StateError("this producer already has an active transaction")
        try:
            self._default.begin_transaction()
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None
        self._in_transaction = True

    def end_transaction(self) -> None:
        """The transaction is over (committed, aborted, or its outcome lost to a cancellation):
        sends outside a transaction are refused again and a new one may begin."""
        self._in_transaction = False

    def in_transaction(self) -> bool:
        return self._in_transaction

    async def commit_transaction(self, timeout_ms: int) -> None:
        """librdkafka's commit (it blocks until the coordinator answers: run in a thread)."""
        timeout_s = check_timeout(timeout_ms) / 1000
        await self._in_thread(self._default.commit_transaction, timeout_s)

    async def abort_transaction(self, timeout_ms: int) -> None:
        timeout_s = check_timeout(timeout_ms) / 1000
        await self._in_thread(self._default.abort_transaction, timeout_s)

    async def send_offsets_to_transaction(
        self, offsets: list[confluent_kafka.TopicPartition], group_metadata: Any, timeout_ms: int
    ) -> None:
        timeout_s = check_timeout(timeout_ms) / 1000
        await self._in_thread(
            self._default.send_offsets_to_transaction, offsets, group_metadata, timeout_s
        )

    @staticmethod
    async def _in_thread(call: Any, *args: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, call, *args)
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None

    # -- internals ----------------------------------------------------------------------------

    def _check_connected(self) -> None:
        if not self._connected:
            raise StateError("producer is not connected; call `await producer.connect()` first")

    def _check_sendable(self) -> None:
        self._check_connected()
        if self.transactional_id is not None and not self._in_transaction:
            raise StateError("a transactional producer sends only inside producer.transaction()")

    def _rd_for(self, acks: int, compression: str) -> RdProducer:
        key = (acks, compression)
        rdp = self._rd.get(key)
        if rdp is not None:
            return rdp
        if self.idempotent and acks != -1:
            raise ConfigError(f"an idempotent producer needs acks=-1 (all); got acks={acks}")
        if self.transactional_id is not None and key != self._default_key and self._rd:
            raise ConfigError("a transactional producer sends with acks=-1 and its one compression")
        conf = dict(self._conf)
        conf["acks"] = acks
        conf.setdefault("compression.type", compression)
        if key != self._default_key:
            conf["compression.type"] = compression
            conf.pop("transactional.id", None)
        rdp = RdProducer(conf, self._retry)
        self._rd[key] = rdp
        return rdp

    @property
    def _default(self) -> Any:
        """The librdkafka producer that owns transactions."""
        return self._rd[self._default_key].rd
