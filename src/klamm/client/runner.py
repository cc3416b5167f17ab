"""The run loop behind `consumer.run()`: fetch on the consumer thread, process on the loop.

One cycle:
  1. fetch: `poll()` for the first message (returns as soon as one is there), then `consume(n, 0)`
     to drain what librdkafka has already prefetched, all on the consumer thread;
  2. group by partition, keeping offset order; drop partitions seeked while we were fetching;
  3. process partition batches (one at a time, or `partitions_consumed_concurrently` at once),
     each strictly in order; a failing handler holds its partition while it is retried;
  4. commit what was resolved (KafkaJS commits at the end of every batch).

A cycle has a time budget (the heartbeat interval, at most a quarter of max.poll.interval.ms).
librdkafka serves a rebalance only while we fetch, so a cycle of slow handlers would hold up the
whole group, and past max.poll.interval.ms get this member evicted while it goes on processing
partitions that are now someone else's. Once the budget is spent, the cycle stops at the next
message (each_message) or batch (each_batch): what is left is rewound and fetched again, after
any pending rebalance has been served. KafkaJS reacts to a rebalance at its next heartbeat alike.

Failure policy per message (each_message) or per batch (each_batch, from its first unresolved
message), KafkaJS's retrier (src/retry/index.js): retry with the RetryPolicy's backoff; an error
no retry can help is not retried: one whose `retriable` is False, and a programming error
(`PROGRAMMING_ERRORS`: KafkaJS's RangeError, ReferenceError, SyntaxError, TypeError). Then, with a
dead-letter topic, the message is produced there (original key/value/headers + metadata headers),
resolved, and consumption moves on. Without one, the consumer crashes as KafkaJS's does: the run
loop ends with NumberOfRetriesExceeded (retries ran out: the consumer restarts) or
NonRetriableError (not retriable, or a programming error: it does not; KafkaJS 2.2.4 observed in
tests/parity/test_consumer_crash.py), and the consumer's crash handler (consumer.py) commits what
was resolved, leaves the group, and restarts or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import confluent_kafka

from klamm.client.errors import (
    KafkaError,
    NonRetriableError,
    NumberOfRetriesExceeded,
    from_librdkafka,
)
from klamm.client.events import Events
from klamm.client.messages import KafkaMessage, MessageList
from klamm.client.patterns.dlq import dead_letter_headers
from klamm.client.payloads import (
    Batch,
    EachBatchHandler,
    EachBatchPayload,
    EachMessageHandler,
    EachMessagePayload,
)
from klamm.client.retry import RetryPolicy

if TYPE_CHECKING:
    from klamm.client.consumer import TP, Consumer
    from klamm.client.offsets import OffsetManager
    from klamm.client.subscription import SubscriptionState

log = logging.getLogger("klamm.client")

# How long one fetch waits for the first message: bounds how quickly stop() is noticed when idle.
_POLL_TIMEOUT_S = 0.1
# Most messages taken from librdkafka's prefetch queue per cycle (all partitions together).
_MAX_MESSAGES_PER_CYCLE = 5_000
# After a consumer-level librdkafka error (not a handler error), wait this long before fetching
# again, so a broken cluster does not turn the loop into a busy spin.
_ERROR_BACKOFF_S = 0.5
# librdkafka's accessors, for passes over a whole fetch in C (map, groupby). partition() is None
# only on error events, which _group drops first.
_message_error = confluent_kafka.Message.error
_message_partition: Callable[[Any], int] = confluent_kafka.Message.partition  # type: ignore[assignment]


# Errors of the handler's code that no retry can fix, so they are not retried: the Python kin of
# KafkaJS's UNRECOVERABLE_ERRORS (RangeError, ReferenceError, SyntaxError, TypeError). A
# KeyError or ValueError may well come from data that a retry sees fixed (a lookup that lands
# later), so those are retried, as KafkaJS retries a plain Error.
PROGRAMMING_ERRORS: tuple[type[BaseException], ...] = (
    TypeError,  # TypeError
    NameError,  # ReferenceError (UnboundLocalError is a NameError)
    AttributeError,  # TypeError: reading a property of undefined
    SyntaxError,  # SyntaxError (a bad exec/eval or import)
    ImportError,  # a missing module: no retry brings it
    RecursionError,  # RangeError: maximum call stack size exceeded
    NotImplementedError,
    AssertionError,
)


class _Crash(Exception):
    """Internal: a handler failed for good without a dead-letter topic: the consumer crashes."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class Runner:
    def __init__(
        self,
        consumer: Consumer,
        *,
        subscription: SubscriptionState,
        offsets: OffsetManager,
        each_message: EachMessageHandler | None,
        each_batch: EachBatchHandler | None,
        each_batch_auto_resolve: bool,
        concurrency: int,
        retry: RetryPolicy,
        dead_letter_topic: str | None,
        cycle_budget_s: float,
    ) -> None:
        self._consumer = consumer
        self._subs = subscription
        self._offsets = offsets
        self._each_message = each_message
        self._each_batch = each_batch
        self._auto_resolve = each_batch_auto_resolve
        self._concurrency = concurrency
        self._retry = retry
        self._dlq = dead_letter_topic
        # The subscription cannot change while running; one plain name (not a "^" regex) means
        # every fetched message is of that topic.
        topics = subscription.topics()
        self._only_topic = topics[0] if len(topics) == 1 and not topics[0].startswith("^") else None
        self.running = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._cycle_budget_s = cycle_budget_s
        self._overdue = False  # the current cycle has spent its budget
        self._on_crash: Callable[[BaseException], None] = _ignore

    def start(self, on_crash: Callable[[BaseException], None]) -> None:
        """Run in the background; `on_crash(error)` is called once if the loop ends on an error."""
        self.running = True
        self._on_crash = on_crash
        self._task = asyncio.create_task(self._loop(), name="klamm-consumer-run")

    def _crash(self, error: BaseException) -> None:
        self.running = False
        self._stopping.set()
        self._on_crash(error)

    async def stop(self) -> None:
        self.running = False
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_done(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    # -- the cycle ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        c, subs = self._consumer, self._subs
        loop = asyncio.get_running_loop()
        while self.running:
            epochs = subs.seek_epochs()
            c.events.emit(Events.FETCH_START, node_id=None)
            fetch_started = time.monotonic()
            try:
                raws = await c.fetch(self._fetch)
            except confluent_kafka.KafkaException as exc:
                if not await self._consumer_error(from_librdkafka(exc)):
                    return
                continue
            if not self.running:
                return  # messages not processed are fetched again after a restart
            subs.clear_stale()
            batches = self._group(raws, epochs)
            if not batches:
                continue
            c.events.emit(
                Events.FETCH,
                number_of_batches=len(batches),
                duration=int((time.monotonic() - fetch_started) * 1000),
                node_id=None,  # librdkafka fetches from many brokers at once
            )
            self._overdue = False
            budget = loop.call_later(self._cycle_budget_s, self._spend_budget)
            try:
                if self._concurrency == 1 or len(batches) == 1:
                    for tp, messages in batches.items():
                        await self._process(tp, messages)
                else:
                    gate = asyncio.Semaphore(self._concurrency)
                    # Every partition's work ends before the cycle does, even when one fails.
                    results = await asyncio.gather(
                        *(self._gated(gate, tp, m) for tp, m in batches.items()),
                        return_exceptions=True,
                    )
                    failures = [r for r in results if isinstance(r, BaseException)]
                    crash = next((f for f in failures if isinstance(f, _Crash)), None)
                    other = next((f for f in failures if not isinstance(f, _Stop)), None)
                    if failures:
                        raise crash or other or failures[0]
            except _Stop:
                return
            except _Crash as failed:
                # What was resolved is committed by the crash handler's stop() (KafkaJS commits
                # the resolved offsets before it throws).
                self._crash(failed.error)
                return
            except Exception as exc:  # a failure nothing above handles: crash, never silently
                log.exception("consumer %s: the run loop failed", c.group_id)
                self._crash(exc)
                return
            finally:
                budget.cancel()
            c.commit_resolved()

    def _spend_budget(self) -> None:
        self._overdue = True

    async def _gated(self, gate: asyncio.Semaphore, tp: TP, raws: list[Any]) -> None:
        async with gate:
            await self._process(tp, raws)

    @staticmethod
    def _fetch(rd: Any) -> list[Any]:
        first = rd.poll(_POLL_TIMEOUT_S)
        if first is None:
            return []
        rest: list[Any] = rd.consume(_MAX_MESSAGES_PER_CYCLE - 1, 0)
        rest.insert(0, first)
        return rest

    def _group(self, raws: list[Any], epochs: dict[TP, int]) -> dict[TP, list[Any]]:
        subs = self._subs
        if any(map(_message_error, raws)):  # one pass in C; errors are rare
            raws = self._drop_errors(raws)
        if self._only_topic is not None:
            batches = self._group_one_topic(raws, self._only_topic)
        else:
            batches = self._group_topics(raws)
        for tp in list(batches):
            if subs.seek_epoch(tp) != epochs.get(tp, 0):
                # seek() ran while we were fetching: these messages may predate it.
                del batches[tp]
                self._consumer.seek_again(tp)
            elif not subs.is_assigned(tp):
                del batches[tp]
        return batches

    @staticmethod
    def _group_one_topic(raws: list[Any], topic: str) -> dict[TP, list[Any]]:
        """The usual case: the subscription is one topic name, so librdkafka fetches nothing
        else and messages are keyed by partition alone. librdkafka returns runs of one
        partition's messages, which `groupby` splits in C: no Python code runs per message."""
        batches: dict[TP, list[Any]] = {}
        for partition, run in itertools.groupby(raws, _message_partition):
            batches.setdefault((topic, partition), []).extend(run)
        return batches

    @staticmethod
    def _group_topics(raws: list[Any]) -> dict[TP, list[Any]]:
        batches: dict[TP, list[Any]] = {}
        current: list[Any] = []
        current_tp: TP | None = None
        for raw in raws:
            tp = (raw.topic(), raw.partition())
            if tp != current_tp:
                current_tp = tp
                current = batches.setdefault(tp, [])
            current.append(raw)
        return batches

    def _drop_errors(self, raws: list[Any]) -> list[Any]:
        """Fetch errors come in-band as messages; log them (end-of-partition events quietly)."""
        kept = []
        for raw in raws:
            err = raw.error()
            if err is None:
                kept.append(raw)
            elif err.code() != confluent_kafka.KafkaError._PARTITION_EOF:
                log.warning("consumer %s: %s", self._consumer.group_id, from_librdkafka(err))
        return kept

    async def _consumer_error(self, error: KafkaError) -> bool:
        """A librdkafka error outside handlers. Returns False when the run loop must end."""
        c = self._consumer
        if error.retriable:
            log.warning("consumer %s: %s; retrying", c.group_id, error)
            await self._sleep(_ERROR_BACKOFF_S)
            return self.running
        self._crash(error)
        return False

    # -- one partition's batch ----------------------------------------------------------------

    async def _process(self, tp: TP, raws: list[Any]) -> None:
        c = self._consumer
        if self._overdue:  # out of time this cycle: fetch it again after the next poll
            c.rewind(tp, raws[0].offset())
            return
        messages = MessageList(raws)
        events = c.events
        if events.has_listeners(Events.START_BATCH_PROCESS):
            events.emit(Events.START_BATCH_PROCESS, **self._batch_fields(tp, raws))
        started = time.monotonic()
        try:
            if self._each_message is not None:
                await self._process_messages(tp, messages, self._each_message)
            else:
                assert self._each_batch is not None
                await self._process_batch(tp, messages, self._each_batch)
        except _Stale:
            return
        if events.has_listeners(Events.END_BATCH_PROCESS):
            duration = int((time.monotonic() - started) * 1000)
            events.emit(Events.END_BATCH_PROCESS, **self._batch_fields(tp, raws), duration=duration)

    def _batch_fields(self, tp: TP, raws: list[Any]) -> dict[str, Any]:
        """KafkaJS's batch event payload (computed only when someone listens)."""
        first, last = raws[0].offset(), raws[-1].offset()
        high = self._consumer.high_watermark(tp[0], tp[1], fallback=last + 1)
        return {
            "topic": tp[0],
            "partition": tp[1],
            "high_watermark": high,
            "offset_lag": max(0, high - 1 - last),
            "offset_lag_low": max(0, high - 1 - first),
            "batch_size": len(raws),
            "first_offset": first,
            "last_offset": last,
        }

    async def _process_messages(
        self, tp: TP, messages: MessageList, handler: EachMessageHandler
    ) -> None:
        c, offsets = self._consumer, self._offsets
        topic, partition = tp
        stale, paused = self._subs.stale_set(), self._subs.paused_set()
        # With an auto-commit interval or threshold, each message is resolved as it is done, so
        # a commit can happen within the batch. Without (the default), commits wait for the end
        # of the batch, so the loop keeps the next offset to resolve in a local and resolves it
        # once, when the batch ends however it ends: no call and no (topic, partition) hashing
        # per message, about a third of this loop's cost. No rebalance can happen meanwhile
        # (see consumer.py), and seek() and pause() mark the partition stale, checked below.
        commit_as_we_go = offsets.commits_within_batches()
        # The last message handled and not yet resolved: its offset is read once, when it is
        # resolved, not for every message.
        done: Any = None
        try:
            # The per-message hot path: the retry machinery is entered only after a failure,
            # and the (usually empty) stale and paused sets are tested before hashing tp.
            for raw in messages._raws:  # librdkafka's messages: offset() without a view
                if not self.running:
                    raise _Stop
                if self._overdue or (stale and tp in stale) or (paused and tp in paused):
                    c.rewind(tp, raw.offset())
                    return
                # The payload is the message too (payloads.py): one object a message.
                payload = EachMessagePayload(c, topic, partition, raw)
                try:
                    await handler(payload)
                except Exception as exc:
                    if done is not None:  # retries may commit (crash) or resolve (DLQ)
                        c.resolve(tp, done.offset() + 1)
                        done = None
                    retry = functools.partial(handler, payload)
                    await self._with_retry(tp, payload, retry, failed=exc)
                if stale and tp in stale:
                    # The handler seeked: the seek sets the position and what is committed
                    # (KafkaJS's offset manager drops the resolved offsets on seek).
                    done = None
                    return
                if commit_as_we_go:
                    c.resolve(tp, raw.offset() + 1)
                    c.commit_if_necessary()
                else:
                    done = raw
        finally:
            if done is not None:
                c.resolve(tp, done.offset() + 1)

    async def _process_batch(
        self, tp: TP, messages: MessageList, handler: EachBatchHandler
    ) -> None:
        c, subs = self._consumer, self._subs
        topic, partition = tp

        def pending() -> MessageList:
            # A retried batch starts after what the handler resolved before it failed.
            position = self._offsets.position(tp)
            if position is None or position <= messages[0].offset:
                return messages  # the common case: nothing of this batch resolved yet
            return MessageList([m._raw for m in messages if m.offset >= position])

        async def call() -> None:
            await handler(EachBatchPayload(c, Batch(c, topic, partition, pending())))

        while True:
            todo = pending()
            if not todo:
                return
            if not self.running:
                raise _Stop
            if subs.is_stale(tp):
                c.rewind(tp, todo[0].offset)
                return
            failed = await self._with_retry(tp, None, call, remaining=pending)
            if failed is None:
                if self._auto_resolve and not subs.is_stale(tp):
                    c.resolve(tp, messages[-1].offset + 1)
                    return
                # The handler stopped early (paused, stale, or resolved only part of the batch
                # without auto-resolve): what it left unresolved is fetched again, as KafkaJS
                # fetches from the resolved offset. Nothing is skipped, so nothing is committed
                # past a message no handler saw.
                rest = pending()
                if rest:
                    c.rewind(tp, rest[0].offset)
                return
            # Retries exhausted and the first unresolved message went to the dead-letter topic
            # (and was resolved): go on with the rest of the batch.

    async def _with_retry(
        self,
        tp: TP,
        message: KafkaMessage | None,
        call: Callable[[], Awaitable[None]],
        remaining: Callable[[], Sequence[KafkaMessage]] | None = None,
        failed: Exception | None = None,
    ) -> int | None:
        """Run `call` with retries (`failed`: the first attempt already ran and raised this).
        Returns None on success, or the offset that was dead-lettered (batch mode). Raises
        _Crash when the consumer must crash instead."""
        c = self._consumer
        delays = self._retry.delays_ms()
        attempt = 0
        delay: int | None = None
        while True:
            if failed is not None:
                error: Exception = failed
                failed = None
            else:
                try:
                    await call()
                    return None
                except Exception as exc:
                    error = exc
            if remaining is not None:
                # Batch mode: the failure is charged to the first unresolved message.
                pending = remaining()
                if not pending:
                    return None
                message = pending[0]
            assert message is not None
            if not self.running or self._subs.is_stale(tp):
                c.rewind(tp, message.offset)
                raise _Stop if not self.running else _Stale
            hopeless = isinstance(error, PROGRAMMING_ERRORS) or (
                getattr(error, "retriable", None) is False
            )
            last_delay = delay
            delay = None if hopeless else next(delays, None)
            if delay is not None:
                attempt += 1
                log.warning(
                    "handler failed on %s[%d]@%d (attempt %d): %r; retrying in %d ms",
                    tp[0],
                    tp[1],
                    message.offset,
                    attempt,
                    error,
                    delay,
                )
                c.events.emit(
                    Events.RETRY,
                    topic=tp[0],
                    partition=tp[1],
                    offset=message.offset,
                    attempt=attempt,
                    error=error,
                    delay_ms=delay,
                )
                await self._sleep(delay / 1000)
                if not self.running:
                    c.rewind(tp, message.offset)
                    raise _Stop
                continue
            if self._dlq is not None:
                refused = await self._send_to_dead_letter(tp, message, error, attempt)
                if refused is None:
                    c.resolve(tp, message.offset + 1)
                    return message.offset
                error = refused  # the dead-letter topic cannot take it: as without one
            log.error("handler failed on %s[%d]@%d: %r; the consumer crashes",
                      tp[0], tp[1], message.offset, error)  # fmt: skip
            if hopeless or getattr(error, "retriable", None) is False:
                # KafkaJS's retrier: NonRetriableError, caused by the error; no restart follows.
                crash: KafkaError = NonRetriableError(f"{type(error).__name__}: {error}")
                crash.__cause__ = error
            else:
                crash = NumberOfRetriesExceeded(
                    error,
                    retry_count=attempt,
                    retry_time_ms=last_delay or self._retry.initial_retry_time_ms,
                )
            raise _Crash(crash)

    async def _send_to_dead_letter(
        self, tp: TP, message: KafkaMessage, error: BaseException, retries: int
    ) -> KafkaError | None:
        """None once the message is in the dead-letter topic. A retriable failure (the cluster
        unreachable) is retried until the send works or the consumer stops: the partition waits,
        in order. Any other failure (the message too large once the headers are added) is
        returned, and the consumer crashes as it would without a DLQ."""
        while True:
            try:
                await self._dead_letter(tp, message, error, retries)
                return None
            except KafkaError as exc:
                if not exc.retriable:
                    log.error("%s[%d]@%d cannot go to dead-letter topic %s: %s",
                              tp[0], tp[1], message.offset, self._dlq, exc)  # fmt: skip
                    return exc
                log.warning("%s[%d]@%d: dead-letter send failed: %s; retrying in %.1f s",
                            tp[0], tp[1], message.offset, exc, _ERROR_BACKOFF_S)  # fmt: skip
            await self._sleep(_ERROR_BACKOFF_S)
            if not self.running:
                self._consumer.rewind(tp, message.offset)
                raise _Stop

    async def _dead_letter(
        self, tp: TP, message: KafkaMessage, error: BaseException, retries: int
    ) -> None:
        c = self._consumer
        assert self._dlq is not None
        headers = dead_letter_headers(
            message.header_list,
            topic=tp[0],
            partition=tp[1],
            offset=message.offset,
            error=error,
            retry_count=retries,
            failed_at_ms=int(time.time() * 1000),
        )
        producer = await c.dead_letter_producer()
        await producer.send(
            topic=self._dlq,
            messages=[{"key": message.key, "value": message.value, "headers": headers}],
        )
        log.warning(
            "%s[%d]@%d sent to dead-letter topic %s after %d retries: %r",
            tp[0],
            tp[1],
            message.offset,
            self._dlq,
            retries,
            error,
        )
        c.events.emit(
            Events.DEAD_LETTER,
            topic=tp[0],
            partition=tp[1],
            offset=message.offset,
            dead_letter_topic=self._dlq,
            error=error,
            retry_count=retries,
        )

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when stop() is called."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


class _Stop(Exception):
    """Internal: the consumer is stopping; leave the batch unfinished (it is fetched again)."""


class _Stale(Exception):
    """Internal: the partition was seeked, paused or revoked while its handler failed; it was
    rewound, and its batch ends here."""


def _ignore(error: BaseException) -> None:
    pass
