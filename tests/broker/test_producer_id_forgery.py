"""Producer ids the broker never handed out are refused (issue 11, finding 1).

The attack: ids are handed out in sequence, so a client that never calls InitProducerId writes
one-record batches (epoch 0, sequence 0) for the next ids. If those were accepted, the next real
idempotent producer would get one of them, its first batch would be taken for a retry of the
forged one, acknowledged at the forged record's offset, and never stored.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from klamm.broker.config import BrokerConfig
from klamm.broker.node import Broker
from klamm.broker.transactions import ProducerIdAllocator, TransactionCoordinator
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch, parse_header
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

pytestmark = pytest.mark.timeout(60)

TOPIC = "victims"
FORGED = 20  # how many of the next ids the attacker claims


def forged_batch(pid: int, seq: int = 0, epoch: int = 0) -> bytes:
    record = Record(0, 1_700_000_000_000, None, f"forged-{pid}".encode())
    return build_batch(
        RecordBatch([record], producer_id=pid, producer_epoch=epoch, base_sequence=seq)
    )


def produce_raw(wire: Wire, records: bytes) -> tuple[int, int]:
    response = wire.request(
        0, 7, transactional_id=None, acks=-1, timeout=5000,
        topic_data=[{"name": TOPIC, "partition_data": [{"index": 0, "records": records}]}],
    )  # fmt: skip
    partition = response.responses[0].partition_responses[0]
    return partition.error_code, partition.base_offset


def create_topic(wire: Wire) -> None:
    response = wire.request(
        19, 4, timeout=5000, validate_only=False,
        topics=[{"name": TOPIC, "num_partitions": 1, "replication_factor": 1,
                 "assignments": [], "configs": []}],
    )  # fmt: skip
    assert response.topics[0].error_code == ErrorCode.none


def attack(bootstrap: str, first_pid: int) -> None:
    """Claim the next FORGED ids without InitProducerId: every batch must be refused."""
    with Wire(bootstrap) as wire:
        for pid in range(first_pid, first_pid + FORGED):
            assert produce_raw(wire, forged_batch(pid)) == (ErrorCode.unknown_producer_id, -1)


def idempotent_send(bootstrap: str, value: bytes) -> int:
    """Send one record with a real idempotent producer; the offset its delivery report names."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0}
    )
    reports: list[tuple[object, int]] = []
    producer.produce(TOPIC, value, on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    assert producer.flush(20) == 0
    [(err, offset)] = reports
    assert err is None
    return offset


def value_at(bootstrap: str, offset: int) -> bytes | None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "forgery-check", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(TOPIC, 0, offset)])
        for _ in range(40):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                assert msg.offset() == offset
                return msg.value()  # type: ignore[no-any-return]
        raise AssertionError(f"no record at offset {offset}")
    finally:
        consumer.close()


def log_end(broker: EmbeddedBroker) -> int:
    with Wire(broker.bootstrap) as wire:
        response = wire.request(
            2, 7, replica_id=-1, isolation_level=0,
            topics=[{"name": TOPIC, "partitions": [
                {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}],
        )  # fmt: skip
        return int(response.topics[0].partitions[0].offset)


def test_forged_producer_ids_are_refused_and_the_real_producer_keeps_its_record(
    tmp_path: Path,
) -> None:
    with EmbeddedBroker(tmp_path / "data") as broker:
        with Wire(broker.bootstrap) as wire:
            create_topic(wire)
        attack(broker.bootstrap, first_pid=0)  # a fresh broker hands out 0, 1, 2, ... next
        assert log_end(broker) == 0  # nothing forged was stored
        offset = idempotent_send(broker.bootstrap, b"mine")
        assert value_at(broker.bootstrap, offset) == b"mine"

        # Across a restart: the ids reserved before it are skipped, the next ones still refused.
        broker.restart()
        attack(broker.bootstrap, first_pid=1000)  # the next block (PID_BLOCK ids each)
        offset = idempotent_send(broker.bootstrap, b"mine after restart")
        assert value_at(broker.bootstrap, offset) == b"mine after restart"
        assert log_end(broker) == offset + 1


# --- the allocator, driven directly -----------------------------------------------------------


async def _broker(data_dir: Path) -> Broker:
    broker = Broker(BrokerConfig(port=0, data_dir=data_dir, flush_policy="os"))
    await broker.start()
    return broker


def _coordinator(broker: Broker) -> TransactionCoordinator:
    coord = broker.transactions
    assert isinstance(coord, TransactionCoordinator)
    return coord


def _append(broker: Broker, data: bytes) -> tuple[ErrorCode, int]:
    partition = broker.partition(TOPIC, 0)
    assert partition is not None
    header = parse_header(data)
    producers = broker.producers
    check = producers.check_append(partition, header)
    if check is not None:
        return check.error, check.base_offset
    appended = partition.log.append(bytearray(data))
    producers.record_append(partition, header, appended.base_offset)
    return ErrorCode.none, appended.base_offset


async def test_refused_ids_are_exactly_those_never_handed_out(tmp_path: Path) -> None:
    broker = await _broker(tmp_path)
    try:
        broker.create_topic(TOPIC, 1)
        coord = _coordinator(broker)
        first = await coord.init_producer_id(None, 0)
        second = await coord.init_producer_id(None, 0)
        assert (first, second) == ((0, 0), (1, 0))
        assert _append(broker, forged_batch(2))[0] == ErrorCode.unknown_producer_id
        assert _append(broker, forged_batch(2**40, seq=7, epoch=3))[0] == (
            ErrorCode.unknown_producer_id
        )
        assert _append(broker, forged_batch(1)) == (ErrorCode.none, 0)
        assert _append(broker, forged_batch(0)) == (ErrorCode.none, 1)
        # A duplicate needs id, epoch and sequence to match: the same sequence in a new epoch is
        # a new batch, not a retry of the old one.
        assert _append(broker, forged_batch(0)) == (ErrorCode.none, 1)  # a retry
        assert _append(broker, forged_batch(0, epoch=1)) == (ErrorCode.none, 2)
        assert _append(broker, forged_batch(0, epoch=1)) == (ErrorCode.none, 2)  # a retry
        assert _append(broker, forged_batch(1, seq=1)) == (ErrorCode.none, 3)
    finally:
        await broker.stop()


async def test_ids_named_by_partitions_are_never_handed_out_again(tmp_path: Path) -> None:
    """Even when the transaction log that recorded the reservation is lost, a producer id still
    named in a partition's producer state is not handed out again (its new owner's first batch
    would look like a retry of the old owner's)."""
    broker = await _broker(tmp_path)
    broker.create_topic(TOPIC, 1)
    coord = _coordinator(broker)
    for _ in range(5):
        pid, _ = await coord.init_producer_id(None, 0)
    assert _append(broker, forged_batch(pid)) == (ErrorCode.none, 0)
    await broker.stop()
    shutil.rmtree(tmp_path / "__transaction_state-0")

    broker = await _broker(tmp_path)
    try:
        new_pid, _ = await _coordinator(broker).init_producer_id(None, 0)
        assert new_pid > pid
        assert _append(broker, forged_batch(new_pid)) == (ErrorCode.none, 1)  # not a duplicate
    finally:
        await broker.stop()


async def test_allocator_blocks_and_observed_ids() -> None:
    reserved: list[int] = []

    async def reserve(end: int) -> None:
        reserved.append(end)
        ids.replay_block(end)  # as the coordinator's write replays its record

    ids = ProducerIdAllocator(block_size=10)
    assert [await ids.allocate(reserve) for _ in range(12)] == list(range(12))
    assert reserved == [10, 20]  # one durable reservation per block, before its first id
    assert ids.is_allocated(11) and not ids.is_allocated(12) and not ids.is_allocated(-1)

    async def failing(end: int) -> None:
        ids.replay_block(end)  # appended and replayed, then the fsync fails
        raise OSError("fsync failed")

    assert [await ids.allocate(failing) for _ in range(8)] == list(range(12, 20))  # reserved
    with pytest.raises(OSError):
        await ids.allocate(failing)
    with pytest.raises(OSError):
        await ids.allocate(failing)  # still not reserved: no id without a durable reservation
    assert ids.next_id == 20 and reserved == [10, 20]
    assert await ids.allocate(reserve) == 20
    assert reserved == [10, 20, 30]

    async def restarted_reserve(end: int) -> None:
        pass

    restarted = ProducerIdAllocator(block_size=10)  # replay: the last block is skipped whole
    restarted.replay_block(10)
    restarted.replay_block(20)
    restarted.observe(2**62)  # forged before ids were checked: unreachable, so not counted
    restarted.observe(3)
    assert restarted.next_id == 20
    assert await restarted.allocate(restarted_reserve) == 20
