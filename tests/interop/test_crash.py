"""Crash test: acks=all producer while the broker is SIGKILLed and restarted on the same data dir.

A confluent-kafka producer (acks=all, not idempotent, one request in flight so that retries cannot
reorder) sends numbered messages to a 3-partition topic from a background thread. The subprocess
broker is killed with SIGKILL several times and restarted on the same data directory and port.
Afterwards every message whose delivery report was a success must be read back at the offset the
report gave, and per partition the first occurrences of the numbers must be in send order.
Retries of a request whose response was lost may duplicate messages (idempotence is off): that
is allowed, loss and reordering are not.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from klamm.testing import EmbeddedBroker
from tests.interop.interop_helpers import create_topic

PARTITIONS = 3
KILLS = 4
# Longest wait for the producer to be acknowledged again after a restart.
PROGRESS_TIMEOUT_S = 15


@pytest.mark.timeout(90)
def test_acked_messages_survive_sigkill(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "data", mode="subprocess")
    broker.start()
    try:
        _run(broker)
    finally:
        broker.stop()


def _run(broker: EmbeddedBroker) -> None:
    topic = create_topic(broker.bootstrap, "crash", PARTITIONS)
    acked: dict[int, dict[int, int]] = {p: {} for p in range(PARTITIONS)}  # offset -> seq
    failed: list[Any] = []
    sent = 0
    stop = threading.Event()

    def report(err: Any, msg: Any) -> None:
        if err is None:
            acked[msg.partition()][msg.offset()] = int(msg.value())
        else:
            failed.append(err)

    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "acks": "all",
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": 1,
            "linger.ms": 5,
            "message.timeout.ms": 20_000,
            "request.timeout.ms": 5_000,
            "socket.timeout.ms": 5_000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
            "retry.backoff.ms": 50,
            "topic.metadata.refresh.interval.ms": 1_000,
        }
    )

    def produce_loop() -> None:
        nonlocal sent
        while not stop.is_set():
            try:
                producer.produce(
                    topic, value=str(sent).encode(), partition=sent % PARTITIONS, on_delivery=report
                )
                sent += 1
            except BufferError:
                producer.poll(0.05)
                continue
            producer.poll(0)
            if sent % 50 == 0:
                time.sleep(0.002)  # a steady stream, not one giant burst

    thread = threading.Thread(target=produce_loop, name="crash-producer", daemon=True)
    thread.start()

    def acked_count() -> int:
        return sum(len(a) for a in acked.values())

    def wait_for_progress(since: int) -> None:
        """The producer must get acknowledgements again after every restart. librdkafka takes
        its own time to reconnect to the leader (up to ~2 s seen here), so wait for it rather
        than assume a fixed delay."""
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while acked_count() <= since:
            assert time.monotonic() < deadline, f"no acknowledgement since {since}"
            time.sleep(0.02)

    try:
        acked_before_kill = []
        for _ in range(KILLS):
            wait_for_progress(acked_before_kill[-1] if acked_before_kill else 0)
            time.sleep(1.0)  # let a stream of appends be in flight when the kill lands
            acked_before_kill.append(acked_count())
            broker.kill()
            time.sleep(0.3)
            broker.start()
        wait_for_progress(acked_before_kill[-1])
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(timeout=10)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages neither delivered nor failed"
    total_acked = sum(len(a) for a in acked.values())
    print(f"sent {sent}, acked {total_acked}, failed {len(failed)}, at kills {acked_before_kill}")
    assert total_acked > 1000, f"only {total_acked} acknowledged of {sent} sent"
    # Progress after every restart, not just before the first kill.
    assert acked_before_kill == sorted(set(acked_before_kill)), acked_before_kill
    assert total_acked > acked_before_kill[-1]

    for partition in range(PARTITIONS):
        stored = _read_partition(broker.bootstrap, topic, partition)
        for offset, seq in acked[partition].items():
            assert offset in stored, f"p{partition}: acked offset {offset} (#{seq}) lost"
            assert stored[offset] == seq, (
                f"p{partition}: offset {offset} holds #{stored[offset]}, acked as #{seq}"
            )
        first_seen: list[int] = []
        seen: set[int] = set()
        for _offset, seq in sorted(stored.items()):
            assert seq % PARTITIONS == partition
            if seq not in seen:
                seen.add(seq)
                first_seen.append(seq)
        assert first_seen == sorted(first_seen), f"p{partition}: messages out of order"


def _read_partition(bootstrap: str, topic: str, partition: int) -> dict[int, int]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "crash-check",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        stored: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while len(stored) < high and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            stored[msg.offset()] = int(msg.value())
        assert len(stored) == high, f"p{partition}: read {len(stored)} of {high} offsets"
        return stored
    finally:
        consumer.close()
