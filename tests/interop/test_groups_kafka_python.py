"""Consumer groups with kafka-python against klamm."""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack, closing
from typing import Any, TypeVar

import pytest

# kafka-python 3.0.12 loads its schemas with the deprecated importlib.resources.read_text.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.structs import OffsetAndMetadata

from tests.interop.interop_helpers import wait_until
from tests.interop.python_clients import FAST_GROUP_CONSUMER

pytestmark = pytest.mark.timeout(90)

T = TypeVar("T")

# How long one poll() of a PolledConsumer waits for records: a call() or close() waits at most
# this long for the loop to take it up. The loop polls again at once, so group work never waits.
POLL_MS = 50
# kafka-python's own bound on the requests of a call (commit, end_offsets) and of close() (its
# LeaveGroup), so that a stuck request ends in kafka-python's error on the poll thread.
REQUEST_MS = 10_000
# How long the test thread waits for a call's result: longer than REQUEST_MS, so kafka-python's
# error, not a bare timeout, reaches the test.
CALL_TIMEOUT_S = 20.0
# How long close() waits for the poll thread to end: a call in progress and then the consumer's
# close (REQUEST_MS each), plus 5 s of slack for a loaded machine.
JOIN_TIMEOUT_S = 2 * REQUEST_MS / 1000 + 5


def consumer(bootstrap: str, group: str, topic: str, **extra: Any) -> KafkaConsumer:
    return KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, **FAST_GROUP_CONSUMER, **extra
    )


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(partitions * per_partition):
        p.send(topic, f"v{i}".encode(), partition=i % partitions)
    p.flush(15)
    p.close()


def pump(c: KafkaConsumer, until: Callable[[], bool], timeout: float = 30.0,
         sink: list[Any] | None = None) -> None:  # fmt: skip
    """Polls one consumer from the test's thread until `until()`. Only for a group of one: the
    members of a bigger group each need a thread of their own (PolledConsumer)."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        for records in c.poll(timeout_ms=50).values():
            if sink is not None:
                sink.extend(records)


class PolledConsumer:
    """A kafka-python group member polled without a break on a thread of its own, as an
    application polls it, keeping the records it hands out.

    Why a thread each: kafka-python does its group work (JoinGroup, SyncGroup, the rejoin a
    rebalance asks for) inside poll(). Two members polled in turn from one thread, 50 ms each,
    now and then kept each other rebalancing, more often on a loaded machine (seen: one member
    left with no partitions for 30 s), so the test timed out or a commit() failed with
    RebalanceInProgressError.

    Concurrency: a KafkaConsumer is not thread-safe, so only the poll thread touches it, from
    the first poll to close(); the test hands it work through `call()`. `records` and `owned`
    are copies the thread publishes under `_lock` after each poll. If the loop fails, they and
    `call()` raise its error. `close()` stops the loop and closes the consumer on its thread (a
    LeaveGroup); it may be called twice, so a `with` block also cleans up after a failed test.
    """

    def __init__(self, consumer: KafkaConsumer) -> None:
        self._consumer = consumer
        self._lock = threading.Lock()
        self._records: list[Any] = []
        self._owned: frozenset[int] = frozenset()
        self._failure: BaseException | None = None
        self._ended = False  # under _lock: the loop has stopped and runs no more calls
        self._calls: queue.SimpleQueue[tuple[Callable[[KafkaConsumer], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._stop = threading.Event()
        name = f"poll-{consumer.config['client_id']}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __enter__(self) -> PolledConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def records(self) -> list[Any]:
        with self._lock:
            self._raise_failure()
            return list(self._records)

    @property
    def owned(self) -> frozenset[int]:
        """The partitions assigned to this member as of its last poll."""
        with self._lock:
            self._raise_failure()
            return self._owned

    def call(self, fn: Callable[[KafkaConsumer], T]) -> T:
        """Runs `fn(consumer)` on the poll thread between two polls and returns its result."""
        future: Future[T] = Future()
        with self._lock:
            self._raise_failure()
            assert not self._ended, "the consumer is closed"
            self._calls.put((fn, future))
        return future.result(timeout=CALL_TIMEOUT_S)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)
        assert not self._thread.is_alive(), f"{self._thread.name} did not stop"
        with self._lock:
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise AssertionError(f"{self._thread.name} failed") from self._failure

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batches = self._consumer.poll(timeout_ms=POLL_MS)
                owned = frozenset(tp.partition for tp in self._consumer.assignment())
                with self._lock:
                    for records in batches.values():
                        self._records.extend(records)
                    self._owned = owned
                self._run_calls()
        except BaseException as e:  # handed to the test thread, which raises it
            self._fail(e)
        finally:
            with self._lock:
                self._ended = True
            self._run_calls(refuse=True)
            try:
                self._consumer.close(timeout_ms=REQUEST_MS)
            except BaseException as e:
                self._fail(e)

    def _run_calls(self, refuse: bool = False) -> None:
        while True:
            try:
                fn, future = self._calls.get_nowait()
            except queue.Empty:
                return
            if refuse:
                future.set_exception(AssertionError("the consumer was closed before the call"))
                continue
            try:
                future.set_result(fn(self._consumer))
            except BaseException as e:
                future.set_exception(e)

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = error


def test_split_leave_resume_describe_and_lag(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic, group = topic_factory(6), f"g-{unique}"
    produce(bootstrap, topic, 6, 3)
    with ExitStack() as stack:
        a = stack.enter_context(PolledConsumer(consumer(bootstrap, group, topic, client_id="kp-a")))
        b = stack.enter_context(PolledConsumer(consumer(bootstrap, group, topic, client_id="kp-b")))

        def got() -> int:
            return len(a.records) + len(b.records)

        wait_until(
            lambda: len(a.owned) == 3 and len(b.owned) == 3 and got() == 18,
            timeout=30,
            what="a and b to split the 6 partitions and read the 18 records",
        )
        assert a.owned | b.owned == set(range(6))
        # Both stop fetching but go on polling (heartbeats, group work): the records produced
        # below are for the lag check, and once b has left, a reads them from the committed
        # offsets, b's three included.
        a.call(lambda c: c.pause(*c.assignment()))
        b.call(lambda c: c.pause(*c.assignment()))
        a.call(lambda c: c.commit(timeout_ms=REQUEST_MS))
        b.call(lambda c: c.commit(timeout_ms=REQUEST_MS))
        admin = stack.enter_context(closing(KafkaAdminClient(bootstrap_servers=bootstrap)))
        desc = admin.describe_groups([group], include_authorized_operations=True)[group]
        assert desc["group_state"] == "Stable" and desc["protocol_data"] == "range", desc
        assert sorted(m["client_id"] for m in desc["members"]) == ["kp-a", "kp-b"]
        assert sum(len(str(m["member_assignment"])) > 0 for m in desc["members"]) == 2
        listed = admin.list_groups(states_filter=["Stable"])
        assert group in {g["group_id"] for g in listed}, listed
        produce(bootstrap, topic, 6, 1)
        # Two groups in one OffsetFetch v8 request, all topics of each (topics=null).
        both = admin.list_group_offsets([group, f"none-{unique}"])
        assert both[f"none-{unique}"] == {}
        offsets = both[group]
        assert {tp.partition: o.offset for tp, o in offsets.items()} == dict.fromkeys(range(6), 3)
        tps = [TopicPartition(topic, p) for p in range(6)]
        ends = a.call(lambda c: c.end_offsets(tps, REQUEST_MS))
        lag = {tp.partition: ends[tp] - o.offset for tp, o in offsets.items()}
        assert lag == dict.fromkeys(range(6), 1)
        b.close()  # LeaveGroup
        wait_until(lambda: len(a.owned) == 6, timeout=30, what="a to own all 6 partitions")
        # kafka-python keeps a partition's state (position, pause) across a rebalance when the
        # member keeps the partition: a's own three stay paused until resumed.
        a.call(lambda c: c.resume(*c.assignment()))
        wait_until(lambda: got() == 24, timeout=30, what="a to read the 6 new records")
        meta = {TopicPartition(topic, 0): OffsetAndMetadata(4, "kp-meta", -1)}
        a.call(lambda c: c.commit(meta, timeout_ms=REQUEST_MS))
        a.close()
        c = stack.enter_context(closing(consumer(bootstrap, group, topic)))
        committed = c.committed(TopicPartition(topic, 0), metadata=True)
        assert (committed.offset, committed.metadata) == (4, "kp-meta")


def test_two_groups_each_read_everything(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic = topic_factory(3)
    produce(bootstrap, topic, 3, 4)
    for name in ("x", "y"):
        with closing(consumer(bootstrap, f"g{name}-{unique}", topic)) as c:
            got: list[Any] = []
            pump(c, lambda got=got: len(got) == 12, sink=got)  # type: ignore[misc]
