"""The producer: `send` / `send_batch` with per-send acks, compression and timeout.

Concurrency contract. `confluent_kafka.Producer.produce` only enqueues, so it is called on the event
loop thread. Delivery reports are served by one poller thread per librdkafka producer (poll()
blocks, so it must not run on the loop); each report is recorded on a `_Delivery` owned by one
send() call, and when the last report of that call arrives a single `call_soon_threadsafe`
resolves its asyncio future. One thread hop per send, not per message, keeps produce close to raw
confluent-kafka speed.

Per-send acks and compression. librdkafka fixes both per producer instance, while KafkaJS takes
them per send(). We keep one librdkafka producer per (acks, compression) pair actually used,
created on first use; the common case uses only the default one. A transactional producer cannot
do this (a transaction belongs to one instance), so there a non-default pair is a ConfigError.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import confluent_kafka

from klamm.client.config import acks_value
from klamm.client.errors import ConfigError, KafkaTimeoutError, StateError, from_librdkafka
from klamm.client.events import EventEmitter, Events, Listener
from klamm.client.messages import CompressionTypes, Message, RecordMetadata, normalise_message

if TYPE_CHECKING:
    from collections.abc import Callable

    from klamm.client.transactions import Transaction

log = logging.getLogger("klamm.client")

# How long the poller thread blocks in poll(): bounds how fast disconnect() notices the stop flag,
# while costing nothing when idle (poll releases the GIL and wakes on the first report).
_POLL_INTERVAL_S = 0.1
# When librdkafka's local queue is full we wait this long for the poller to drain it, then retry.
_QUEUE_FULL_WAIT_S = 0.005
# Yield to the event loop every this many produce() calls so a huge send cannot starve it.
_YIELD_EVERY = 2_000

MessageInput = Message | Mapping[str, Any]


class _Delivery:
    """Collects the delivery reports of one send(); completed on the event loop."""

    __slots__ = ("error", "future", "loop", "remaining", "results")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.loop = loop
        self.future: asyncio.Future[list[RecordMetadata]] = loop.create_future()
        self.results: list[RecordMetadata | None] = [None] * count
        self.remaining = count
        self.error: Any = None

    def report(self, index: int, err: Any, msg: Any) -> None:
        """Called on the poller thread, once per message."""
        if err is not None:
            if self.error is None:
                self.error = err
        else:
            ts = msg.timestamp()[1]
            offset = msg.offset()  # None with acks=0: the broker never says where it went
            self.results[index] = RecordMetadata(
                msg.topic(),
                msg.partition(),
                -1 if offset is None else offset,
                ts if ts > 0 else None,
            )
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def abandon(self, count: int) -> None:
        """`count` messages were never enqueued (produce raised); do not wait for them."""
        self.remaining -= count
        if self.remaining == 0:
            self._resolve()

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(from_librdkafka(self.error))
        else:
            self.future.set_result([r for r in self.results if r is not None])


class _RdProducer:
    """One librdkafka producer and the thread that serves its delivery reports."""

    def __init__(self, conf: dict[str, Any]) -> None:
        try:
            self.rd = confluent_kafka.Producer(conf)
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="klamm-producer-poll", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.rd.poll(_POLL_INTERVAL_S)

    def close(self, timeout_s: float) -> int:
        """Stop the poller, then flush on the calling thread; returns messages left undelivered."""
        self._stop.set()
        self._thread.join()
        remaining: int = self.rd.flush(timeout_s)
        return remaining


class Producer:
    """KafkaJS's producer. Create it with `Kafka.producer()`."""

    def __init__(
        self,
        conf: dict[str, Any],
        *,
        idempotent: bool = False,
        transactional_id: str | None = None,
        transaction_timeout_ms: int = 60_000,
        max_in_flight_requests: int | None = None,
        allow_auto_topic_creation: bool = True,
        linger_ms: float | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        conf = dict(conf)
        if transactional_id is not None:
            idempotent = True  # librdkafka requires it, and so does Kafka.
            conf["transactional.id"] = transactional_id
            conf["transaction.timeout.ms"] = transaction_timeout_ms
        conf["enable.idempotence"] = idempotent
        conf["allow.auto.create.topics"] = allow_auto_topic_creation
        if max_in_flight_requests is not None:
            conf["max.in.flight.requests.per.connection"] = max_in_flight_requests
        if linger_ms is not None:
            conf["linger.ms"] = linger_ms
        if config:
            conf.update(config)
        self._conf = conf
        self.idempotent = idempotent
        self.transactional_id = transactional_id
        self.events = EventEmitter("producer")
        self._rd: dict[tuple[int, str], _RdProducer] = {}
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
        if self.transactional_id is not None:
            timeout_s = self._conf.get("transaction.timeout.ms", 60_000) / 1000
            try:
                await loop.run_in_executor(None, rdp.rd.init_transactions, timeout_s)
            except confluent_kafka.KafkaException as exc:
                await loop.run_in_executor(None, rdp.close, 0)
                self._rd.clear()
                raise from_librdkafka(exc) from None
        self._connected = True
        self.events.emit(Events.CONNECT)

    async def disconnect(self, timeout_ms: int = 30_000) -> None:
        """Deliver what is queued (up to `timeout_ms`), then release the producers."""
        if not self._rd:
            return
        loop = asyncio.get_running_loop()
        rds, self._rd = list(self._rd.values()), {}
        self._connected = False
        left = 0
        for rdp in rds:
            left += await loop.run_in_executor(None, rdp.close, timeout_ms / 1000)
        if left:
            log.warning("producer disconnected with %d undelivered messages", left)
        self.events.emit(Events.DISCONNECT)

    async def __aenter__(self) -> Producer:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    def on(self, event: Events, listener: Listener) -> Callable[[], None]:
        return self.events.on(event, listener)

    def is_connected(self) -> bool:
        return self._connected

    # -- sending ------------------------------------------------------------------------------

    async def send(
        self,
        *,
        topic: str,
        messages: Sequence[MessageInput],
        acks: int | str = -1,
        compression: CompressionTypes | None = None,
        timeout_ms: int | None = None,
    ) -> list[RecordMetadata]:
        """Produce `messages` to `topic` and wait until all are acknowledged (per `acks`).

        Returns one RecordMetadata per message, in the order given. `timeout_ms` bounds the wait;
        when it expires KafkaTimeoutError is raised (messages already handed to librdkafka may
        still be delivered later, as with any Kafka client)."""
        return await self.send_batch(
            topic_messages=[{"topic": topic, "messages": messages}],
            acks=acks,
            compression=compression,
            timeout_ms=timeout_ms,
        )

    async def send_batch(
        self,
        *,
        topic_messages: Sequence[Mapping[str, Any]],
        acks: int | str = -1,
        compression: CompressionTypes | None = None,
        timeout_ms: int | None = None,
    ) -> list[RecordMetadata]:
        """Produce to several topics at once: `[{"topic": t, "messages": [...]}, ...]`."""
        self._check_sendable()
        rdp = self._rd_for(acks_value(acks), (compression or CompressionTypes.NONE).value)
        records = []
        for entry in topic_messages:
            topic = entry.get("topic")
            if not isinstance(topic, str) or not topic:
                raise ConfigError(f"each entry needs a topic name, got {topic!r}")
            for m in entry.get("messages", ()):
                records.append((topic, normalise_message(m)))
        if not records:
            return []
        loop = asyncio.get_running_loop()
        delivery = _Delivery(loop, len(records))
        produce, report = rdp.rd.produce, delivery.report
        for index, (topic, rec) in enumerate(records):
            kwargs: dict[str, Any] = {"on_delivery": functools.partial(report, index)}
            if rec.partition is not None:
                kwargs["partition"] = rec.partition
            if rec.timestamp is not None:
                kwargs["timestamp"] = rec.timestamp
            if rec.headers is not None:
                kwargs["headers"] = rec.headers
            while True:
                try:
                    produce(topic, rec.value, rec.key, **kwargs)
                    break
                except BufferError:
                    await asyncio.sleep(_QUEUE_FULL_WAIT_S)
                except confluent_kafka.KafkaException as exc:
                    delivery.abandon(len(records) - index)
                    if index == 0:
                        raise from_librdkafka(exc) from None
                    delivery.error = delivery.error or exc.args[0]
                    return await delivery.future
            if index % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
        if timeout_ms is None:
            return await delivery.future
        try:
            return await asyncio.wait_for(asyncio.shield(delivery.future), timeout_ms / 1000)
        except TimeoutError:
            raise KafkaTimeoutError(f"send not acknowledged within {timeout_ms} ms") from None

    async def flush(self, timeout_ms: int = 30_000) -> None:
        """Wait until everything queued so far is delivered."""
        loop = asyncio.get_running_loop()
        for rdp in list(self._rd.values()):
            left = await loop.run_in_executor(None, rdp.rd.flush, timeout_ms / 1000)
            if left:
                raise KafkaTimeoutError(f"{left} messages not delivered within {timeout_ms} ms")

    # -- transactions -------------------------------------------------------------------------

    def transaction(self) -> Transaction:
        """`async with producer.transaction() as txn:` (commits on exit, aborts on error), or
        `txn = await producer.transaction()` then `await txn.commit()` / `await txn.abort()`."""
        from klamm.client.transactions import Transaction

        if self.transactional_id is None:
            raise ConfigError("transaction() needs kafka.producer(transactional_id=...)")
        self._check_connected()
        return Transaction(self)

    # -- internals ----------------------------------------------------------------------------

    def _check_connected(self) -> None:
        if not self._connected:
            raise StateError("producer is not connected; call `await producer.connect()` first")

    def _check_sendable(self) -> None:
        self._check_connected()
        if self.transactional_id is not None and not self._in_transaction:
            raise StateError("a transactional producer sends only inside producer.transaction()")

    def _rd_for(self, acks: int, compression: str) -> _RdProducer:
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
        rdp = _RdProducer(conf)
        self._rd[key] = rdp
        return rdp

    @property
    def _default(self) -> Any:
        """The librdkafka producer that owns transactions."""
        return self._rd[self._default_key].rd
