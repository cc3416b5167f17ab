"""Fault test: transactional consume-transform-produce while the broker is SIGKILLed and
restarted (subprocess broker, same data directory and port). Afterwards a read_committed reader
sees every input exactly once in the output, in order: no duplicate, no loss."""

from __future__ import annotations

import threading
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from klamm.testing import EmbeddedBroker  # noqa: E402

pytestmark = pytest.mark.timeout(150)

N = 400
BATCH = 20


def _clients(bootstrap: str, src: str, group: str, txn_id: str) -> tuple[object, object]:
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
        "isolation.level": "read_committed", "auto.offset.reset": "earliest",
        "socket.timeout.ms": 3000,
    })  # fmt: skip
    start = consumer.committed([ck.TopicPartition(src, 0)], 10)[0].offset
    consumer.assign([ck.TopicPartition(src, 0, start if start >= 0 else ck.OFFSET_BEGINNING)])
    producer = ck.Producer({
        "bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 1,
        "transaction.timeout.ms": 10_000, "socket.timeout.ms": 3000,
    })  # fmt: skip
    producer.init_transactions(20)
    return consumer, producer


def _committed(bootstrap: str, src: str, group: str) -> int:
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return consumer.committed([ck.TopicPartition(src, 0)], 10)[0].offset
    finally:
        consumer.close()


def test_exactly_once_across_sigkill(tmp_path):
    src, dst, group, txn_id = "crash-in", "crash-out", "crash-g", "crash-txn"
    broker = EmbeddedBroker(tmp_path / "data", mode="subprocess")
    broker.start()
    try:
        bootstrap = broker.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.create_topics([NewTopic(src, 1, 1), NewTopic(dst, 1, 1)]).values():
            f.result(10)
        seed = ck.Producer({"bootstrap.servers": bootstrap})
        for i in range(N):
            seed.produce(src, f"v{i}".encode())
        assert seed.flush(10) == 0

        kills = 0
        stop = threading.Event()

        def killer() -> None:
            nonlocal kills
            for delay in (1.5, 2.5):
                if stop.wait(delay):
                    return
                broker.kill()
                kills += 1
                time.sleep(0.3)
                broker.start()

        thread = threading.Thread(target=killer)
        thread.start()
        consumer = producer = None
        deadline = time.monotonic() + 100
        done = 0
        try:
            while time.monotonic() < deadline:
                try:
                    if consumer is None:
                        consumer, producer = _clients(bootstrap, src, group, txn_id)
                    msgs = [m for m in consumer.consume(BATCH, timeout=0.5) if not m.error()]
                    if not msgs:
                        if not thread.is_alive() and _committed(bootstrap, src, group) >= N:
                            break
                        continue
                    producer.begin_transaction()
                    for m in msgs:
                        producer.produce(dst, m.value().upper(), partition=0)
                    producer.send_offsets_to_transaction(
                        [ck.TopicPartition(src, 0, msgs[-1].offset() + 1)],
                        consumer.consumer_group_metadata(),
                        10,
                    )
                    producer.commit_transaction(10)
                    done += len(msgs)
                except ck.KafkaException:
                    # Any failure: start over from the group's committed offsets with a fresh
                    # producer (init_transactions fences and aborts whatever was open).
                    if consumer is not None:
                        consumer.close()
                    consumer = producer = None
                    time.sleep(0.2)
        finally:
            stop.set()
            thread.join()
            if consumer is not None:
                consumer.close()
        assert kills == 2
        assert _committed(bootstrap, src, group) == N

        reader = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-check",
                              "isolation.level": "read_committed",
                              "enable.auto.commit": False})  # fmt: skip
        reader.assign([ck.TopicPartition(dst, 0, ck.OFFSET_BEGINNING)])
        out: list[bytes] = []
        end = time.monotonic() + 15
        while len(out) < N and time.monotonic() < end:
            m = reader.poll(0.2)
            if m is not None and not m.error():
                out.append(m.value())
        time.sleep(0.5)
        while (m := reader.poll(0.2)) is not None:
            if not m.error():
                out.append(m.value())
        reader.close()
        assert out == [f"V{i}".encode() for i in range(N)]
    finally:
        broker.stop()
