"""The consumer: KafkaJS's subscribe / run / pause / resume / seek / commit over librdkafka.

Concurrency contract.
- Every librdkafka call that can block or trigger rebalance callbacks (poll, consume, close,
  synchronous commit) runs on ONE dedicated thread (`self._thread`). Rebalance callbacks therefore
  run on that thread; they hop to the event loop with `_call_on_loop` and wait for it, so all
  consumer state below is only ever touched on the event loop thread.
- The runner (runner.py) alternates: fetch on the thread, then process on the loop. So when a
  rebalance callback runs, no handler is in flight: a revoked partition's work is always finished
  before we commit its resolved offsets and give it up. A revoked partition's offsets are never
  committed afterwards (`resolve` drops offsets of partitions we do not own).

State has owners, as in KafkaJS: the SubscriptionState (topics, assignment, pauses, seeks) and
the OffsetManager (resolved offsets, commit policy); the runner gets both at construction and
calls this class only through its public methods. librdkafka's own auto-commit is off.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import confluent_kafka

from klamm.client.connectivity import create_client, reach_cluster
from klamm.client.consumer_args import (
    OFFSET_BEGINNING,
    OFFSET_END,
    awaitable,
    by_topic,
    check_run_args,
    commit_spec,
    describe_consumer_group,
    generation_of,
    group_conf,
    group_description,
    original_cause,
    seek_offset,
    topic_name,
    topics_shape,
)
from klamm.client.consumer_args import PartitionAssigners as PartitionAssigners
from klamm.client.errors import (
    ConfigError,
    KafkaError,
    NumberOfRetriesExceeded,
    StateError,
    from_librdkafka,
)
from klamm.client.events import Connectable, EventEmitter, Events
from klamm.client.offsets import OffsetManager
from klamm.client.retry import RetryPolicy
from klamm.client.subscription import SubscriptionState

if TYPE_CHECKING:
    from klamm.client.payloads import EachBatchHandler, EachMessageHandler
    from klamm.client.producer import Producer
    from klamm.client.runner import Runner

log = logging.getLogger("klamm.client")
T = TypeVar("T")
TP = tuple[str, int]

# The same librdkafka error is logged at most once in this many seconds.
_ERROR_LOG_INTERVAL_S = 10.0
# A rebalance callback waits at most this long for the event loop (listeners included) before
# letting librdkafka proceed: a stuck listener must not wedge the group forever.
_CALLBACK_WAIT_S = 60.0
# run() waits for the group join at most the rebalance timeout plus this: the join itself may take
# the whole rebalance timeout (other members finishing their work), and the coordinator lookup and
# JoinGroup/SyncGroup round trips come on top.
_JOIN_SLACK_S = 10.0


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
        self._connect_timeout_s = connect_timeout_s
        # The connection settings alone, for the admin client of describe_group().
        self._client_conf = dict(conf)
        self._conf = group_conf(
            conf,
            group_id=group_id,
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
            read_uncommitted=read_uncommitted,
            group_instance_id=group_instance_id,
            rack_id=rack_id,
            config=config,
        )
        # librdkafka's Python binding does not expose rd_kafka_rebalance_protocol(); the strategy
        # decides it (cooperative-sticky cannot be mixed with eager ones, checked above).
        self._cooperative = self._conf["partition.assignment.strategy"] == "cooperative-sticky"
        self.group_id = group_id
        self.retry = retry
        self.events = EventEmitter("consumer")
        self._producer_factory = producer_factory
        self._dlq_producer: Producer | None = None
        self._rd: Any = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._runner: Runner | None = None
        # State below is touched on the event loop thread only (see the module docstring); its
        # owners are the subscription state and the offset manager (KafkaJS's split).
        self._subs = SubscriptionState()
        self._offsets = OffsetManager()
        self._join_started = time.monotonic()
        self._joined = asyncio.Event()
        # run()'s arguments, for the restart after a crash (KafkaJS's start(onCrash)).
        self._run_args: dict[str, Any] = {}
        self._restart_task: asyncio.Task[None] | None = None
        self._crash_tasks: set[asyncio.Task[None]] = set()
        # While a rebalance callback waits for the loop, librdkafka calls that wait for its main
        # thread (memberid, seek, ...) would deadlock; such calls are queued here and run by the
        # callback thread once the loop part is done.
        self._in_rebalance = False
        self._member_id: str | None = None  # as of the last assignment, for events
        self._generation_id: int | None = None  # likewise
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
        await self._shutdown()

    async def _shutdown(self) -> None:
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
        topics: Sequence[str | re.Pattern[str]] | None = None,
        topic: str | re.Pattern[str] | None = None,
        from_beginning: bool = False,
    ) -> None:
        """Add topics to the subscription (before `run()`). A name starting with "^" or a
        compiled `re.Pattern` subscribes to every matching topic. `from_beginning` applies where
        the group has no committed offset yet, to the topics of this call (as in KafkaJS)."""
        if self._runner is not None:
            raise StateError("subscribe() before run(); stop() first to change the subscription")
        if isinstance(topics, str | bytes):  # list("orders") would subscribe to "o", "r", ...
            raise ConfigError(f"topics= takes a list of names: topics=[{topics!r}] or topic=")
        if topics is not None and not isinstance(topics, Sequence | set | frozenset):
            raise ConfigError(f"topics= takes a list of names, not {type(topics).__name__}")
        if not isinstance(from_beginning, bool):
            raise ConfigError(f"from_beginning must be True or False, not {from_beginning!r}")
        names = [topic_name(t) for t in list(topics or []) + ([topic] if topic else [])]
        if not names:
            raise ConfigError("subscribe() needs topics=[...]")
        self._subs.subscribe(names, from_beginning=from_beginning)

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
        """Join the group and start consuming in the background. Returns once the group is
        joined and this member has its partitions (KafkaJS's runner awaits the join), so a
        `pause()` right after applies to them."""
        if not self._connected:
            raise StateError("consumer is not connected; call `await consumer.connect()` first")
        if self._runner is not None:
            raise StateError("consumer is already running")
        if (each_message is None) == (each_batch is None):
            raise ConfigError("run() needs exactly one of each_message= or each_batch=")
        check_run_args(
            handler=each_message or each_batch,
            auto_commit=auto_commit,
            auto_commit_interval_ms=auto_commit_interval_ms,
            auto_commit_threshold=auto_commit_threshold,
            each_batch_auto_resolve=each_batch_auto_resolve,
            partitions_consumed_concurrently=partitions_consumed_concurrently,
            retry=retry,
            dead_letter_topic=dead_letter_topic,
        )
        if not self._subs.topics():
            raise StateError("subscribe() to at least one topic before run()")
        self._run_args = {
            "each_message": each_message,
            "each_batch": each_batch,
            "auto_commit": auto_commit,
            "auto_commit_interval_ms": auto_commit_interval_ms,
            "auto_commit_threshold": auto_commit_threshold,
            "each_batch_auto_resolve": each_batch_auto_resolve,
            "partitions_consumed_concurrently": partitions_consumed_concurrently,
            "retry": retry,
            "dead_letter_topic": dead_letter_topic,
        }
        self._offsets.configure(
            auto_commit=auto_commit,
            interval_ms=auto_commit_interval_ms,
            threshold=auto_commit_threshold,
        )
        conf = dict(self._conf)
        start = self._subs.uniform_start()
        # One start for every topic: librdkafka's auto.offset.reset. Mixed starts: librdkafka
        # starts at the end, and the assignment callback moves the from_beginning topics'
        # partitions without a committed offset to the beginning.
        conf.setdefault("auto.offset.reset", "earliest" if start else "latest")
        conf["on_commit"] = self._on_commit_thread
        conf["error_cb"] = self._on_error_thread
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._joined = asyncio.Event()
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="klamm-consumer")
        try:
            self._rd = confluent_kafka.Consumer(conf)
            self._join_started = time.monotonic()
            self._rd.subscribe(
                self._subs.topics(),
                on_assign=self._on_assign_thread,
                on_revoke=self._on_revoke_thread,
                on_lost=self._on_lost_thread,
            )
        except confluent_kafka.KafkaException as exc:
            self._thread.shutdown(wait=False)
            self._rd = self._thread = None
            raise from_librdkafka(exc) from None
        # KafkaJS emits CONNECT again when run() connects its consumer group (and so on every
        # restart); ported code counting connections sees the same here.
        self.events.emit(Events.CONNECT)
        from klamm.client.runner import Runner

        runner = self._runner = Runner(
            self,
            subscription=self._subs,
            offsets=self._offsets,
            each_message=awaitable(each_message),
            each_batch=awaitable(each_batch),
            each_batch_auto_resolve=each_batch_auto_resolve,
            concurrency=partitions_consumed_concurrently,
            retry=retry or self.retry,
            dead_letter_topic=dead_letter_topic,
            # See runner.py: how long one fetch's processing may hold up a rebalance.
            cycle_budget_s=min(conf["heartbeat.interval.ms"], conf["max.poll.interval.ms"] / 4)
            / 1000,
        )
        runner.start(on_crash=self._crash_soon)
        await self._wait_joined(runner, conf["max.poll.interval.ms"] / 1000 + _JOIN_SLACK_S)

    async def _wait_joined(self, runner: Runner, timeout_s: float) -> None:
        joined = asyncio.ensure_future(self._joined.wait())
        done = asyncio.ensure_future(runner.wait_done())
        try:
            await asyncio.wait({joined, done}, timeout=timeout_s, return_when="FIRST_COMPLETED")
        finally:
            joined.cancel()
            done.cancel()
        if not self._joined.is_set() and runner.running:
            log.warning("consumer %s: not in the group after %.0f s", self.group_id, timeout_s)

    async def stop(self) -> None:
        """Finish the message/batch in flight, commit what was resolved, leave the group."""
        restart, self._restart_task = self._restart_task, None
        if restart is not None and restart is not asyncio.current_task():
            restart.cancel()  # a crash's pending restart: the user wants the consumer stopped
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await runner.stop()
        if self._offsets.auto_commit:
            try:
                await self._commit_sync(self._offsets.take_resolved())
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
        self._subs.clear()
        self._offsets.clear()
        self.events.emit(Events.STOP)

    async def wait_stopped(self) -> None:
        """Wait until the background run loop ends (after stop(), or a crash: then until the
        crash is handled, CRASH emitted and any restart scheduled)."""
        runner = self._runner
        if runner is not None:
            await runner.wait_done()
        while self._crash_tasks:
            await asyncio.gather(*self._crash_tasks, return_exceptions=True)

    # -- crashes (KafkaJS's onCrash) ----------------------------------------------------------

    def _crash_soon(self, error: BaseException) -> None:
        """The run loop ended on `error`: handle it in a task of its own (stop() awaits the
        run loop, so the run loop cannot do it itself)."""
        task = asyncio.ensure_future(self._on_crash(error))
        self._crash_tasks.add(task)
        task.add_done_callback(self._crash_tasks.discard)

    async def _on_crash(self, error: BaseException) -> None:
        """As KafkaJS: disconnect first (the member leaves the group; STOP and DISCONNECT are
        emitted), then CRASH with `restart`; restart only when the error is retriable (retries
        ran out, or the original cause says `retriable`) and `restart_on_failure` agrees (one
        that raises counts as yes)."""
        log.error("consumer %s crashed: %r", self.group_id, error)
        policy = self._run_args.get("retry") or self.retry
        await self._shutdown()
        restart = isinstance(error, NumberOfRetriesExceeded) or (
            getattr(original_cause(error), "retriable", False) is True
        )
        if restart and policy.restart_on_failure is not None:
            try:
                restart = bool(await policy.restart_on_failure(error))
            except Exception:
                log.exception("restart_on_failure raised; restarting (KafkaJS's default)")
                restart = True
        self.events.emit(Events.CRASH, error=error, group_id=self.group_id, restart=restart)
        if restart:
            wait_ms = getattr(error, "retry_time_ms", None) or policy.initial_retry_time_ms
            self._restart_task = asyncio.ensure_future(self._restart(wait_ms / 1000))

    async def _restart(self, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        self._restart_task = None
        try:  # KafkaJS's start() reconnects and joins again
            await asyncio.get_running_loop().run_in_executor(None, self._probe)
            self._connected = True
            await self.run(**self._run_args)
        except KafkaError as exc:
            self._crash_soon(exc)

    # -- partition control (KafkaJS shapes: [{"topic": t, "partitions": [0, 1]}]) ------------

    def pause(self, topics: Sequence[Mapping[str, Any]]) -> None:
        """Stop fetching these partitions. Without "partitions", the whole topic is paused,
        including partitions assigned later, until resumed (KafkaJS). The member stays in the
        group: librdkafka keeps heartbeating."""
        owned = self._subs.pause(topics)
        if owned and self._rd is not None:
            rd = self._rd
            self._rd_call(
                lambda: rd.pause([confluent_kafka.TopicPartition(t, p) for t, p in owned])
            )

    def resume(self, topics: Sequence[Mapping[str, Any]]) -> None:
        owned = self._subs.resume(topics)
        if owned and self._rd is not None:
            rd = self._rd
            self._rd_call(
                lambda: rd.resume([confluent_kafka.TopicPartition(t, p) for t, p in owned])
            )
            for tp in owned:
                # Messages fetched but not processed before the pause are fetched again.
                offset = self._subs.take_resume_at(tp)
                if offset is not None:
                    self._seek_now(tp, offset)

    def paused(self) -> list[dict[str, Any]]:
        """The assigned partitions that are paused: `[{"topic", "partitions"}]` (KafkaJS)."""
        return self._subs.paused()

    def seek(self, *, topic: str, partition: int, offset: int | str) -> None:
        """Consume `topic`/`partition` from `offset` next. The batch in flight for that partition
        becomes stale. As KafkaJS's offset manager, an assigned partition's new offset is
        committed at once when auto-commit is on (resolved when it is off), so a restart
        resumes there. Before the partition is assigned, the seek is applied on assignment."""
        if not isinstance(topic, str) or type(partition) is not int:
            raise ConfigError(
                f"seek() needs topic= (str), partition= (int): {topic!r} {partition!r}"
            )
        tp = (topic, partition)
        offset = seek_offset(offset)
        self._offsets.forget([tp])
        if self._subs.is_assigned(tp) and self._rd is not None:
            if self._subs.is_paused(tp):
                self._subs.mark_seeked(tp, offset)  # fetched again from it once resumed
                self._subs.set_resume_at(tp, offset)
            else:
                self._seek_now(tp, offset)
            self._keep_seek(tp, offset)
        else:
            self._subs.request_seek(tp, offset)

    def _keep_seek(self, tp: TP, offset: int) -> None:
        """KafkaJS's offsetManager.seek: commit the sought offset (auto-commit) or resolve it."""
        if offset < 0:
            return  # a logical offset (-1 end, -2 beginning) is no offset to commit
        if self._offsets.auto_commit:
            self._commit_async({tp: offset})
        else:
            self._offsets.resolve(tp, offset)

    def assignment(self) -> list[TP]:
        return self._subs.assignment()

    async def commit_offsets(self, offsets: Any) -> None:
        """Commit exactly these offsets (the NEXT offset to read, as Kafka stores it):
        `[{"topic", "partition", "offset", "metadata"?}]`, KafkaJS's `{"topics": [...]}`, or a
        `{(topic, partition): offset}` dict. `metadata` (a str) is stored with the offset."""
        await self._commit_sync(commit_spec(offsets))

    def uncommitted_offsets(self) -> dict[str, Any]:
        """Resolved, not yet committed: KafkaJS's `{"topics": [{"topic", "partitions":
        [{"partition", "offset"}]}]}` (offsets are the next to read, as committed)."""
        return {"topics": topics_shape(self._offsets.uncommitted())}

    def group_metadata(self) -> Any:
        """librdkafka's group metadata, for `txn.send_offsets(consumer=...)`."""
        if self._rd is None:
            raise StateError("the consumer must be running to take part in a transaction")
        return self._rd.consumer_group_metadata()

    async def describe_group(self) -> dict[str, Any]:
        """This consumer's group as KafkaJS's describeGroup() shows it: `group_id`, `state`
        (Kafka's name: "Stable", "Empty", ...), `protocol`, `protocol_type`, `error_code` and
        `members` (`member_id`, `client_id`, `client_host`, `member_assignment` by topic)."""
        loop = asyncio.get_running_loop()
        conf, timeout_s = self._client_conf, self._connect_timeout_s
        try:
            d = await loop.run_in_executor(
                None, lambda: describe_consumer_group(conf, self.group_id, timeout_s)
            )
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None
        return group_description(d)

    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """KafkaJS's consumer.logger(): klamm's client logger, with this group in `extra`."""
        return logging.LoggerAdapter(log, {"group_id": self.group_id})

    # -- for the runner and the payloads (event loop thread) ----------------------------------

    def is_running(self) -> bool:
        return self._runner is not None and self._runner.running

    def is_stale(self, topic: str, partition: int) -> bool:
        return self._subs.is_stale((topic, partition))

    def heartbeat_event(self) -> None:
        """payload.heartbeat(): librdkafka heartbeats on its own; the event says it was asked."""
        ids = {"group_id": self.group_id, "member_id": self._member_id}
        self.events.emit(Events.HEARTBEAT, **ids, group_generation_id=self._generation_id)

    def resolve(self, tp: TP, next_offset: int) -> None:
        """A message was processed: `next_offset` is committed at the next commit (if `tp` is
        still ours: a revoked partition's offsets are never committed)."""
        if self._subs.is_assigned(tp):
            self._offsets.resolve(tp, next_offset)

    def commit_if_necessary(self) -> None:
        if self._offsets.commit_due():
            self._commit_async(self._offsets.take_resolved())

    def commit_resolved(self) -> None:
        """End of a batch: KafkaJS commits whatever was resolved."""
        if self._offsets.auto_commit and self._offsets.has_uncommitted():
            self._commit_async(self._offsets.take_resolved())

    async def fetch(self, fetch: Callable[[Any], list[Any]]) -> list[Any]:
        """Run `fetch(librdkafka consumer)` on the consumer thread (the only thread that
        polls, so rebalance callbacks run there)."""
        if self._rd is None or self._thread is None:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, fetch, self._rd)

    def rewind(self, tp: TP, next_offset: int) -> None:
        """Processing of `tp` stopped before `next_offset` (paused, failed): fetch it again."""
        if not self._subs.is_assigned(tp) or tp in self._subs.stale_set():
            return  # revoked, or an explicit seek already chose the position
        if self._subs.is_paused(tp):
            self._subs.set_resume_at(tp, next_offset)
        else:
            self._seek_now(tp, next_offset)

    def seek_again(self, tp: TP) -> None:
        """A fetch running while `tp` was seeked was dropped, messages after the seek too: seek
        again, between fetches, so those come again."""
        offset = self._subs.sought(tp)
        if offset is not None and self._subs.is_assigned(tp) and not self._subs.is_paused(tp):
            self._seek_now(tp, offset)

    def high_watermark(self, topic: str, partition: int, fallback: int) -> int:
        """The partition's end offset as of the last fetch response (no request)."""
        if self._rd is None:
            return fallback
        try:
            _low, high = self._rd.get_watermark_offsets(
                confluent_kafka.TopicPartition(topic, partition), cached=True
            )
        except confluent_kafka.KafkaException:
            return fallback
        return int(high) if high >= 0 else fallback

    async def dead_letter_producer(self) -> Producer:
        if self._dlq_producer is None:
            producer = self._producer_factory()
            await producer.connect()  # kept only once connected: a failed connect is retried
            self._dlq_producer = producer
        return self._dlq_producer

    # -- librdkafka calls -----------------------------------------------------------------------

    def _commit_async(self, offsets: dict[TP, int]) -> None:
        if not offsets or self._rd is None:
            return
        rd = self._rd
        tps = [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]

        def commit() -> None:
            try:
                # Only enqueues the request; the result arrives in _on_commit_thread.
                rd.commit(offsets=tps, asynchronous=True)
            except confluent_kafka.KafkaException as exc:
                log.warning("commit of %s failed: %s", offsets, from_librdkafka(exc))

        self._rd_call(commit)

    async def _commit_sync(self, offsets: Mapping[TP, int | tuple[int, str | None]]) -> None:
        if not offsets:
            return
        if self._rd is None or self._thread is None:
            raise StateError("commit_offsets() needs a running consumer")
        tps = []
        for (t, p), value in offsets.items():
            offset, metadata = value if isinstance(value, tuple) else (value, None)
            extra = () if metadata is None else (metadata,)
            tps.append(confluent_kafka.TopicPartition(t, p, offset, *extra))
        rd = self._rd
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self._thread, lambda: rd.commit(offsets=tps, asynchronous=False)
            )
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None

    def _seek_now(self, tp: TP, offset: int) -> None:
        self._subs.mark_seeked(tp, offset)
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
        self._start_positions(rd, [p for p in partitions if (p.topic, p.partition) not in seeks])
        if cooperative:
            rd.incremental_assign(partitions)
        else:
            rd.assign(partitions)
        ids = (rd.memberid(), generation_of(rd.consumer_group_metadata()))
        self._call_on_loop(self._assigned_on_loop(partitions, cooperative, ids, seeks))
        self._run_deferred()

    def _start_positions(self, rd: Any, partitions: list[Any]) -> None:
        """Subscriptions that disagree on from_beginning: partitions without a committed offset
        start where their topic's subscribe() call said (librdkafka has one auto.offset.reset).
        The subscription is fixed while running, so this thread may read it."""
        if self._subs.uniform_start() is not None or not partitions:
            return
        try:
            committed = rd.committed(partitions, timeout=self._connect_timeout_s)
        except confluent_kafka.KafkaException as exc:
            log.warning("consumer %s: reading committed offsets failed: %s", self.group_id, exc)
            return
        starts = {(c.topic, c.partition): c.offset for c in committed}
        for tp in partitions:
            if starts.get((tp.topic, tp.partition), -1) < 0:
                start = self._subs.from_beginning(tp.topic)
                if start is None:
                    start = self._subs.pattern_from_beginning(tp.topic)
                tp.offset = OFFSET_BEGINNING if start else OFFSET_END

    async def _take_pending_seeks(self) -> dict[TP, int]:
        return self._subs.take_pending_seeks()

    async def _assigned_on_loop(
        self, partitions: list[Any], cooperative: bool, ids: tuple[Any, Any], seeks: dict[TP, int]
    ) -> None:
        """`ids`: this member's id and the group generation, as librdkafka has them now."""
        self._in_rebalance = True
        try:
            tps = [(p.topic, p.partition) for p in partitions]
            self._member_id, self._generation_id = ids
            self._subs.assign(tps, incremental=cooperative)
            for tp, offset in seeks.items():
                if self._subs.is_assigned(tp):
                    self._keep_seek(tp, offset)
            # Paused partitions, including those of a topic paused as a whole, stay paused.
            repause = [
                confluent_kafka.TopicPartition(t, p) for t, p in tps if self._subs.is_paused((t, p))
            ]
            rd = self._rd
            if repause and rd is not None:
                self._deferred.append(lambda: rd.pause(repause))
            await self.events.emit_and_wait(Events.PARTITIONS_ASSIGNED, partitions=tps)
            self.events.emit(
                Events.GROUP_JOIN,
                group_id=self.group_id,
                member_id=self._member_id,
                # librdkafka does not say who leads the group (see docs/kafkajs.md).
                leader_id=None,
                is_leader=None,
                group_protocol=self._conf["partition.assignment.strategy"],
                member_assignment=by_topic(set(self._subs.assignment())),
                duration=int((time.monotonic() - self._join_started) * 1000),
            )
            self._joined.set()
        finally:
            self._in_rebalance = False

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
        self._subs.revoke(tps)
        uncommitted = self._offsets.forget(tps)
        return uncommitted if self._offsets.auto_commit and not lost else {}

    def _on_commit_thread(self, err: Any, partitions: list[Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if err is not None:
            # KafkaJS emits COMMIT_OFFSETS for commits that succeeded only.
            log.warning("offset commit failed: %s", from_librdkafka(err))
            return
        offsets = {(p.topic, p.partition): p.offset for p in partitions}
        loop.call_soon_threadsafe(
            lambda: self.events.emit(
                Events.COMMIT_OFFSETS,
                group_id=self.group_id,
                member_id=self._member_id,
                group_generation_id=self._generation_id,
                topics=topics_shape(offsets),
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
