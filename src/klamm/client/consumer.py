"""The consumer: KafkaJS's subscribe / run / pause / resume / seek / commit over librdkafka.

Concurrency contract.
- Every librdkafka call that can block or trigger rebalance callbacks (poll, consume, close,
  synchronous commit) runs on ONE dedicated thread (`self._thread`). Rebalance callbacks therefore
  run on that thread; they hop to the event loop with `_call_on_loop` and wait for it, so all
  consumer state below is only ever touched on the event loop thread.
- The runner (runner.py) alternates: fetch on the thread, then process on the loop. So when a
  rebalance callback runs, no handler is in flight: a revoked partition's work is always finished
  before we commit its resolved offsets and give it up. A revoked partition's offsets are never
  committed afterwards (`_resolve` drops offsets of partitions we do not own).

Offsets follow KafkaJS: a message is "resolved" after its handler returns; resolved offsets are
committed when the auto-commit interval/threshold says so, at the end of each batch, before a
partition is revoked, and on stop. librdkafka's own auto-commit is off.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import confluent_kafka

from klamm.client.connectivity import create_client, reach_cluster
from klamm.client.errors import ConfigError, KafkaError, StateError, from_librdkafka
from klamm.client.events import Connectable, EventEmitter, Events
from klamm.client.retry import RetryPolicy

if TYPE_CHECKING:
    from klamm.client.payloads import EachBatchHandler, EachMessageHandler, Resume
    from klamm.client.producer import Producer
    from klamm.client.runner import Runner

log = logging.getLogger("klamm.client")
T = TypeVar("T")
H = TypeVar("H", bound=Callable[..., Any])  # a handler: each_message or each_batch
TP = tuple[str, int]

# The same librdkafka error is logged at most once in this many seconds.
_ERROR_LOG_INTERVAL_S = 10.0
# A rebalance callback waits at most this long for the event loop (listeners included) before
# letting librdkafka proceed: a stuck listener must not wedge the group forever.
_CALLBACK_WAIT_S = 60.0


class PartitionAssigners(enum.Enum):
    """Assignment strategies (librdkafka's names). COOPERATIVE_STICKY is KIP-429 incremental
    rebalancing, which KafkaJS lacks; it cannot be mixed with the eager two."""

    ROUND_ROBIN = "roundrobin"
    RANGE = "range"
    COOPERATIVE_STICKY = "cooperative-sticky"


class Consumer(Connectable):
    """KafkaJS's consumer. Create it with `Kafka.consumer(group_id=...)`, which holds the
    defaults."""

    def __init__(
        self,
        conf: dict[str, Any],
        *,
        group_id: str,
        producer_factory: Callable[[], Producer],
        partition_assigners: Sequence[PartitionAssigners],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        heartbeat_interval_ms: int,
        metadata_max_age_ms: int,
        allow_auto_topic_creation: bool,
        max_bytes_per_partition: int,
        min_bytes: int,
        max_bytes: int,
        max_wait_time_ms: int,
        retry: RetryPolicy,
        read_uncommitted: bool,
        group_instance_id: str | None,
        rack_id: str | None,
        config: Mapping[str, Any] | None,
        connect_timeout_s: float,
    ) -> None:
        if not group_id:
            raise ConfigError("consumer needs a group_id")
        self._connect_timeout_s = connect_timeout_s
        if heartbeat_interval_ms >= session_timeout_ms:
            raise ConfigError("heartbeat_interval_ms must be lower than session_timeout_ms")
        strategies = [PartitionAssigners(a).value for a in partition_assigners]
        if not strategies:
            raise ConfigError("partition_assigners must not be empty")
        if "cooperative-sticky" in strategies and len(strategies) > 1:
            raise ConfigError("COOPERATIVE_STICKY cannot be combined with eager assigners")
        conf = dict(conf)
        conf.update(
            {
                "group.id": group_id,
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": heartbeat_interval_ms,
                # librdkafka sends max.poll.interval.ms as the JoinGroup rebalance timeout.
                "max.poll.interval.ms": max(rebalance_timeout_ms, session_timeout_ms),
                "topic.metadata.refresh.interval.ms": metadata_max_age_ms,
                "allow.auto.create.topics": allow_auto_topic_creation,
                "max.partition.fetch.bytes": max_bytes_per_partition,
                "fetch.min.bytes": min_bytes,
                "fetch.max.bytes": max(max_bytes, max_bytes_per_partition),
                "fetch.wait.max.ms": max_wait_time_ms,
                "isolation.level": "read_uncommitted" if read_uncommitted else "read_committed",
                "partition.assignment.strategy": ",".join(strategies),
                # librdkafka postpones a partition's next fetch by this much when its local queue
                # is over the threshold; its 1 s default stalls a handler that just caught up
                # (measured: ~1 s gaps in bench/client_vs_raw.py). 10 ms keeps the queue fed.
                "fetch.queue.backoff.ms": 10,
                # We commit ourselves, after handlers resolve (KafkaJS semantics).
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        if group_instance_id:
            conf["group.instance.id"] = group_instance_id
        if rack_id:
            conf["client.rack"] = rack_id
        if config:
            conf.update(config)
        self._conf = conf
        # librdkafka's Python binding does not expose rd_kafka_rebalance_protocol(); the strategy
        # decides it (cooperative-sticky cannot be mixed with eager ones, checked above).
        self._cooperative = conf["partition.assignment.strategy"] == "cooperative-sticky"
        self.group_id = group_id
        self.retry = retry
        self.events = EventEmitter("consumer")
        self._producer_factory = producer_factory
        self._dlq_producer: Producer | None = None
        self._topics: list[str] = []
        self._from_beginning: bool | None = None
        self._rd: Any = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._runner: Runner | None = None
        # State below is touched on the event loop thread only (see the module docstring).
        self._assigned: set[TP] = set()
        self._paused: set[TP] = set()
        self._resume_at: dict[TP, int] = {}
        self._pending_seeks: dict[TP, int] = {}
        self._stale: set[TP] = set()
        self._seek_epoch: dict[TP, int] = {}
        self._resolved: dict[TP, int] = {}  # resolved, not yet committed
        self._positions: dict[TP, int] = {}  # last resolved (next offset), kept across commits
        self._resolved_count = 0
        self._last_commit = time.monotonic()
        self._auto_commit = True
        self._auto_commit_interval_s: float | None = None
        self._auto_commit_threshold: int | None = None
        self._join_started = time.monotonic()
        # While a rebalance callback waits for the loop, librdkafka calls that wait for its main
        # thread (memberid, seek, ...) would deadlock; such calls are queued here and run by the
        # callback thread once the loop part is done.
        self._in_rebalance = False
        self._member_id: str | None = None  # as of the last assignment, for events
        self._error_logged: dict[int, float] = {}  # error code -> when last logged
        self._deferred: list[Callable[[], Any]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Reach the cluster (AuthenticationError at once when the login is refused). The group
        is joined by `run()` (as in KafkaJS)."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self._probe)
        self._connected = True
        self.events.emit(Events.CONNECT)

    def _probe(self) -> None:
        """A throwaway librdkafka consumer fetches metadata once: the real one is created by
        run(), with the subscription, and must not see this connection's errors."""
        probe, watch = create_client(confluent_kafka.Consumer, self._conf)
        try:
            reach_cluster(probe, watch, self._connect_timeout_s)
        finally:
            probe.close()

    async def disconnect(self) -> None:
        await self.stop()
        if self._dlq_producer is not None:
            await self._dlq_producer.disconnect()
            self._dlq_producer = None
        if self._connected:
            self._connected = False
            self.events.emit(Events.DISCONNECT)

    async def subscribe(
        self,
        *,
        topics: Sequence[str] | None = None,
        topic: str | None = None,
        from_beginning: bool = False,
    ) -> None:
        """Add topics to the subscription (before `run()`). A name starting with "^" is a regex.
        `from_beginning` applies where the group has no committed offset yet."""
        if self._runner is not None:
            raise StateError("subscribe() before run(); stop() first to change the subscription")
        if isinstance(topics, str):  # list("orders") would subscribe to "o", "r", "d", ...
            raise ConfigError(f"topics= takes a list of names: topics=[{topics!r}] or topic=")
        names = list(topics or []) + ([topic] if topic else [])
        if not names:
            raise ConfigError("subscribe() needs topics=[...]")
        if self._from_beginning is not None and self._from_beginning != from_beginning:
            # librdkafka has one auto.offset.reset per consumer instance.
            raise ConfigError("all subscribe() calls of one consumer must agree on from_beginning")
        self._from_beginning = from_beginning
        self._topics.extend(n for n in names if n not in self._topics)

    async def run(
        self,
        *,
        each_message: EachMessageHandler | None = None,
        each_batch: EachBatchHandler | None = None,
        auto_commit: bool = True,
        auto_commit_interval_ms: int | None = None,
        auto_commit_threshold: int | None = None,
        each_batch_auto_resolve: bool = True,
        partitions_consumed_concurrently: int = 1,
        retry: RetryPolicy | None = None,
        dead_letter_topic: str | None = None,
    ) -> None:
        """Join the group and start consuming in the background; returns once running."""
        from klamm.client.runner import Runner

        if not self._connected:
            raise StateError("consumer is not connected; call `await consumer.connect()` first")
        if self._runner is not None:
            raise StateError("consumer is already running")
        if (each_message is None) == (each_batch is None):
            raise ConfigError("run() needs exactly one of each_message= or each_batch=")
        if not self._topics:
            raise StateError("subscribe() to at least one topic before run()")
        if partitions_consumed_concurrently < 1:
            raise ConfigError("partitions_consumed_concurrently must be >= 1")
        self._auto_commit = auto_commit
        self._auto_commit_interval_s = (
            auto_commit_interval_ms / 1000 if auto_commit_interval_ms is not None else None
        )
        self._auto_commit_threshold = auto_commit_threshold
        conf = dict(self._conf)
        conf.setdefault("auto.offset.reset", "earliest" if self._from_beginning else "latest")
        conf["on_commit"] = self._on_commit_thread
        conf["error_cb"] = self._on_error_thread
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="klamm-consumer")
        try:
            self._rd = confluent_kafka.Consumer(conf)
            self._join_started = time.monotonic()
            self._rd.subscribe(
                self._topics,
                on_assign=self._on_assign_thread,
                on_revoke=self._on_revoke_thread,
                on_lost=self._on_lost_thread,
            )
        except confluent_kafka.KafkaException as exc:
            self._thread.shutdown(wait=False)
            self._rd = self._thread = None
            raise from_librdkafka(exc) from None
        self._runner = Runner(
            self,
            each_message=_awaitable(each_message),
            each_batch=_awaitable(each_batch),
            each_batch_auto_resolve=each_batch_auto_resolve,
            concurrency=partitions_consumed_concurrently,
            retry=retry or self.retry,
            dead_letter_topic=dead_letter_topic,
            # See runner.py: how long one fetch's processing may hold up a rebalance.
            cycle_budget_s=min(conf["heartbeat.interval.ms"], conf["max.poll.interval.ms"] / 4)
            / 1000,
        )
        self._runner.start()

    async def stop(self) -> None:
        """Finish the message/batch in flight, commit what was resolved, leave the group."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await runner.stop()
        if self._auto_commit:
            try:
                await self._commit_sync(self._take_resolved())
            except KafkaError as exc:
                # As KafkaJS: a failed final commit (cluster down, membership lost) is logged,
                # not raised, and the consumer is still closed, so it leaves the group and no
                # thread is left behind. What was not committed is delivered again.
                log.warning("consumer %s: final commit failed: %s", self.group_id, exc)
        rd, executor = self._rd, self._thread
        if rd is not None and executor is not None:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(executor, rd.close)
            except (confluent_kafka.KafkaException, RuntimeError) as exc:
                log.warning("closing the consumer failed: %s", exc)
            executor.shutdown(wait=False)
        self._rd = self._thread = None
        self._assigned.clear()
        self._stale.clear()
        self._resolved.clear()
        self._positions.clear()
        self._resume_at.clear()
        self.events.emit(Events.STOP)

    async def wait_stopped(self) -> None:
        """Wait until the background run loop ends (after stop() or a crash that stops it)."""
        runner = self._runner
        if runner is not None:
            await runner.wait_done()

    # -- partition control (KafkaJS shapes: [{"topic": t, "partitions": [0, 1]}]) ------------

    def pause(self, topics: Sequence[Mapping[str, Any]]) -> None:
        """Stop fetching these partitions (all of a topic's when "partitions" is absent). The
        member stays in the group: librdkafka keeps heartbeating."""
        tps = self._expand(topics)
        self._paused.update(tps)
        owned = [tp for tp in tps if tp in self._assigned]
        if owned and self._rd is not None:
            rd = self._rd
            self._rd_call(
                lambda: rd.pause([confluent_kafka.TopicPartition(t, p) for t, p in owned])
            )

    def resume(self, topics: Sequence[Mapping[str, Any]]) -> None:
        tps = self._expand(topics)
        self._paused.difference_update(tps)
        owned = [tp for tp in tps if tp in self._assigned]
        if owned and self._rd is not None:
            rd = self._rd
            self._rd_call(
                lambda: rd.resume([confluent_kafka.TopicPartition(t, p) for t, p in owned])
            )
            for tp in owned:
                # Messages fetched but not processed before the pause are fetched again.
                offset = self._resume_at.pop(tp, None)
                if offset is not None:
                    self._seek_now(tp, offset)

    def paused(self) -> list[dict[str, Any]]:
        by_topic: dict[str, list[int]] = {}
        for t, p in sorted(self._paused):
            by_topic.setdefault(t, []).append(p)
        return [{"topic": t, "partitions": ps} for t, ps in by_topic.items()]

    def seek(self, *, topic: str, partition: int, offset: int) -> None:
        """Consume `topic`/`partition` from `offset` next. The batch in flight for that partition
        becomes stale. Before the partition is assigned, the seek is applied on assignment."""
        tp = (topic, partition)
        offset = _seek_offset(offset)
        self._resume_at.pop(tp, None)
        if tp in self._assigned and self._rd is not None:
            if tp in self._paused:
                self._resume_at[tp] = offset
                self._stale.add(tp)
            else:
                self._seek_now(tp, offset)
        else:
            self._pending_seeks[tp] = offset
        self._resolved.pop(tp, None)
        self._positions.pop(tp, None)

    def assignment(self) -> list[TP]:
        return sorted(self._assigned)

    async def commit_offsets(self, offsets: Any) -> None:
        """Commit exactly these offsets (the NEXT offset to read, as Kafka stores it):
        `[{"topic", "partition", "offset"}]`, KafkaJS's `{"topics": [...]}`, or a
        `{(topic, partition): offset}` dict."""
        tps: list[tuple[str, int, int]] = []
        if isinstance(offsets, Mapping) and "topics" in offsets:
            for entry in offsets["topics"]:
                for p in entry["partitions"]:
                    tps.append((entry["topic"], int(p["partition"]), int(p["offset"])))
        elif isinstance(offsets, Mapping):
            tps = [(t, p, int(o)) for (t, p), o in offsets.items()]
        else:
            tps = [(o["topic"], int(o["partition"]), int(o["offset"])) for o in offsets]
        await self._commit_sync({(t, p): o for t, p, o in tps})

    def group_metadata(self) -> Any:
        """librdkafka's group metadata, for `txn.send_offsets(consumer=...)`."""
        if self._rd is None:
            raise StateError("the consumer must be running to take part in a transaction")
        return self._rd.consumer_group_metadata()

    # -- used by the runner and payloads (event loop thread) -----------------------------------

    def _is_running(self) -> bool:
        return self._runner is not None and self._runner.running

    def _is_stale(self, topic: str, partition: int) -> bool:
        tp = (topic, partition)
        return tp in self._stale or tp not in self._assigned or tp in self._paused

    def _pause_one(self, topic: str, partition: int) -> Resume:
        spec = [{"topic": topic, "partitions": [partition]}]
        self.pause(spec)
        return lambda: self.resume(spec)

    def _note_heartbeat(self) -> None:
        self.events.emit(Events.HEARTBEAT, group_id=self.group_id)

    def _resolve(self, topic: str, partition: int, next_offset: int) -> None:
        self._resolve_tp((topic, partition), next_offset)

    def _resolve_tp(self, tp: TP, next_offset: int) -> None:
        if tp in self._assigned:
            self._resolved[tp] = next_offset
            self._positions[tp] = next_offset
            self._resolved_count += 1

    def _uncommitted(self) -> dict[TP, int]:
        return dict(self._resolved)

    def _take_resolved(self) -> dict[TP, int]:
        resolved, self._resolved = self._resolved, {}
        self._resolved_count = 0
        self._last_commit = time.monotonic()
        return resolved

    def _commits_within_batches(self) -> bool:
        """Whether an auto-commit interval or threshold may commit before a batch ends."""
        return self._auto_commit and (
            self._auto_commit_interval_s is not None or self._auto_commit_threshold is not None
        )

    def _commit_if_necessary(self) -> None:
        if not self._resolved or not self._commits_within_batches():
            return
        interval, threshold = self._auto_commit_interval_s, self._auto_commit_threshold
        if (interval is not None and time.monotonic() - self._last_commit >= interval) or (
            threshold is not None and self._resolved_count >= threshold
        ):
            self._commit_async(self._take_resolved())

    def _commit_resolved(self) -> None:
        """End of a batch: KafkaJS commits whatever was resolved."""
        if self._auto_commit and self._resolved:
            self._commit_async(self._take_resolved())

    def _commit_async(self, offsets: dict[TP, int]) -> None:
        if not offsets or self._rd is None:
            return
        tps = [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            # Only enqueues the request; the result arrives in _on_commit_thread.
            self._rd.commit(offsets=tps, asynchronous=True)
        except confluent_kafka.KafkaException as exc:
            log.warning("commit of %s failed: %s", offsets, from_librdkafka(exc))

    async def _commit_sync(self, offsets: dict[TP, int]) -> None:
        if not offsets:
            return
        if self._rd is None or self._thread is None:
            raise StateError("commit_offsets() needs a running consumer")
        tps = [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self._thread, lambda: self._rd.commit(offsets=tps, asynchronous=False)
            )
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None

    def _seek_now(self, tp: TP, offset: int) -> None:
        self._stale.add(tp)
        self._seek_epoch[tp] = self._seek_epoch.get(tp, 0) + 1
        rd = self._rd

        def seek() -> None:
            try:
                rd.seek(confluent_kafka.TopicPartition(tp[0], tp[1], offset))
            except confluent_kafka.KafkaException as exc:
                raise from_librdkafka(exc) from None

        self._rd_call(seek)

    def _rd_call(self, fn: Callable[[], Any]) -> None:
        if self._in_rebalance:
            self._deferred.append(fn)
        else:
            fn()

    def _run_deferred(self) -> None:
        """On the consumer thread, after the loop part of a rebalance callback."""
        calls, self._deferred = self._deferred, []
        for fn in calls:
            try:
                fn()
            except Exception:
                log.exception("deferred consumer call failed")

    def _interrupt(self, tp: TP, next_offset: int) -> None:
        """Processing of `tp` stopped before `next_offset` (paused, failed): fetch it again."""
        if tp not in self._assigned or tp in self._stale:
            return  # revoked, or an explicit seek already chose the position
        if tp in self._paused:
            self._resume_at[tp] = next_offset
            self._stale.add(tp)
        else:
            self._seek_now(tp, next_offset)

    def _cached_high_watermark(self, topic: str, partition: int, fallback: int) -> int:
        if self._rd is None:
            return fallback
        try:
            _low, high = self._rd.get_watermark_offsets(
                confluent_kafka.TopicPartition(topic, partition), cached=True
            )
        except confluent_kafka.KafkaException:
            return fallback
        return int(high) if high >= 0 else fallback

    async def _dead_letter_producer(self) -> Producer:
        if self._dlq_producer is None:
            producer = self._producer_factory()
            await producer.connect()  # kept only once connected: a failed connect is retried
            self._dlq_producer = producer
        return self._dlq_producer

    # -- librdkafka callbacks (consumer thread) ------------------------------------------------

    def _call_on_loop(self, coro: Coroutine[Any, Any, T]) -> T | None:
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            return None
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        deadline = time.monotonic() + _CALLBACK_WAIT_S
        # Wait in short steps: if the loop stops meanwhile (the application's asyncio.run ended
        # without disconnect), the coroutine will never run, and librdkafka must not wait for it.
        while time.monotonic() < deadline:
            try:
                return future.result(0.1)
            except concurrent.futures.TimeoutError:
                if loop.is_closed() or not loop.is_running():
                    future.cancel()
                    return None
        log.error("rebalance listeners did not finish in %.0f s", _CALLBACK_WAIT_S)
        return None

    def _on_assign_thread(self, rd: Any, partitions: list[Any]) -> None:
        cooperative = self._cooperative
        seeks = self._call_on_loop(self._take_pending_seeks()) or {}
        for tp in partitions:
            if (tp.topic, tp.partition) in seeks:
                tp.offset = seeks[(tp.topic, tp.partition)]
        if cooperative:
            rd.incremental_assign(partitions)
        else:
            rd.assign(partitions)
        member_id = rd.memberid()
        self._call_on_loop(self._assigned_on_loop(partitions, cooperative, member_id))
        self._run_deferred()

    async def _take_pending_seeks(self) -> dict[TP, int]:
        seeks, self._pending_seeks = self._pending_seeks, {}
        return seeks

    async def _assigned_on_loop(
        self, partitions: list[Any], cooperative: bool, member_id: str | None
    ) -> None:
        self._in_rebalance = True
        try:
            await self._apply_assignment(partitions, cooperative, member_id)
        finally:
            self._in_rebalance = False

    async def _apply_assignment(
        self, partitions: list[Any], cooperative: bool, member_id: str | None
    ) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self._member_id = member_id
        if not cooperative:
            self._assigned.clear()
        self._assigned.update(tps)
        self._stale.difference_update(tps)
        repause = [confluent_kafka.TopicPartition(t, p) for t, p in tps if (t, p) in self._paused]
        rd = self._rd
        if repause and rd is not None:
            self._deferred.append(lambda: rd.pause(repause))
        await self.events.emit_and_wait(Events.PARTITIONS_ASSIGNED, partitions=tps)
        self.events.emit(
            Events.GROUP_JOIN,
            group_id=self.group_id,
            member_id=member_id,
            group_protocol=self._conf["partition.assignment.strategy"],
            member_assignment=_by_topic(self._assigned),
            duration=int((time.monotonic() - self._join_started) * 1000),
        )

    def _on_revoke_thread(self, rd: Any, partitions: list[Any]) -> None:
        offsets = self._call_on_loop(self._revoked_on_loop(partitions, lost=False))
        self._run_deferred()
        if offsets:
            tps = [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            try:
                # Synchronous: the offsets must be committed while we still own the partitions.
                rd.commit(offsets=tps, asynchronous=False)
            except confluent_kafka.KafkaException as exc:
                log.warning("commit on revoke failed: %s", from_librdkafka(exc))
        if self._cooperative:
            rd.incremental_unassign(partitions)
        else:
            rd.unassign()

    def _on_lost_thread(self, rd: Any, partitions: list[Any]) -> None:
        # Lost, not revoked: another member may own them already, so nothing is committed.
        self._call_on_loop(self._revoked_on_loop(partitions, lost=True))
        self._run_deferred()
        if self._cooperative:
            rd.incremental_unassign(partitions)
        else:
            rd.unassign()

    async def _revoked_on_loop(self, partitions: list[Any], *, lost: bool) -> dict[TP, int]:
        self._in_rebalance = True
        try:
            return await self._revoked(partitions, lost=lost)
        finally:
            self._in_rebalance = False

    async def _revoked(self, partitions: list[Any], *, lost: bool) -> dict[TP, int]:
        tps = [(p.topic, p.partition) for p in partitions]
        self._join_started = time.monotonic()
        self.events.emit(Events.REBALANCING, group_id=self.group_id, member_id=self._member_id)
        await self.events.emit_and_wait(
            Events.PARTITIONS_LOST if lost else Events.PARTITIONS_REVOKED, partitions=tps
        )
        offsets = {}
        for tp in tps:
            self._assigned.discard(tp)
            self._stale.add(tp)
            self._resume_at.pop(tp, None)
            self._positions.pop(tp, None)
            offset = self._resolved.pop(tp, None)
            if offset is not None and self._auto_commit and not lost:
                offsets[tp] = offset
        return offsets

    def _on_commit_thread(self, err: Any, partitions: list[Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if err is not None:
            error: KafkaError | None = from_librdkafka(err)
            log.warning("offset commit failed: %s", error)
        else:
            error = None
        # KafkaJS's shape: [{"topic", "partitions": [{"partition", "offset"}]}].
        by_topic: dict[str, list[dict[str, int]]] = {}
        for p in partitions:
            by_topic.setdefault(p.topic, []).append({"partition": p.partition, "offset": p.offset})
        topics = [{"topic": t, "partitions": ps} for t, ps in by_topic.items()]
        loop.call_soon_threadsafe(
            lambda: self.events.emit(
                Events.COMMIT_OFFSETS,
                group_id=self.group_id,
                member_id=self._member_id,
                topics=topics,
                error=error,
            )
        )

    def _on_error_thread(self, err: Any) -> None:
        # An outage makes librdkafka report the same error many times a second: log each
        # error once per _ERROR_LOG_INTERVAL_S, or the log drowns in it.
        now, code = time.monotonic(), err.code()
        if now - self._error_logged.get(code, -_ERROR_LOG_INTERVAL_S) < _ERROR_LOG_INTERVAL_S:
            return
        self._error_logged[code] = now
        log.warning("consumer %s: %s", self.group_id, from_librdkafka(err))

    def _expand(self, topics: Sequence[Mapping[str, Any]]) -> list[TP]:
        if isinstance(topics, Mapping):
            topics = [topics]
        tps: list[TP] = []
        for entry in topics:
            topic = entry["topic"]
            parts = entry.get("partitions")
            if parts is None:
                parts = [p for t, p in self._assigned if t == topic]
            tps.extend((topic, int(p)) for p in parts)
        return tps


def _by_topic(tps: set[TP]) -> dict[str, list[int]]:
    by_topic: dict[str, list[int]] = {}
    for t, p in sorted(tps):
        by_topic.setdefault(t, []).append(p)
    return by_topic


def _awaitable(handler: H | None) -> H | None:
    """KafkaJS awaits whatever a handler returns, so a plain function is a handler too; it runs
    on the event loop. Async handlers (the usual case) are used as they are: nothing per message."""
    if handler is None or _is_async(handler):
        return handler
    call = handler

    async def awaiting(payload: Any) -> None:
        result = call(payload)
        if inspect.isawaitable(result):
            await result

    return cast(H, awaiting)


def _is_async(handler: Callable[..., Any]) -> bool:
    # An object with `async def __call__` counts too: the method is on its type.
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__call__
    )


# librdkafka's logical offsets, which KafkaJS's seek() also accepts as "-1" and "-2".
_OFFSET_END, _OFFSET_BEGINNING = -1, -2


def _seek_offset(offset: Any) -> int:
    try:
        value = int(offset)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid offset {offset!r}: expected an integer") from None
    if value < 0 and value not in (_OFFSET_END, _OFFSET_BEGINNING):
        raise ConfigError(
            f"offset must not be negative, except -1 (the end) and -2 (the beginning): {value}"
        )
    return value
