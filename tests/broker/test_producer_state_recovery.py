"""Producer state survives a restart, from a snapshot or (crash: no snapshot) by replaying the
log, so a retried batch after a restart is still recognised as a duplicate."""

from __future__ import annotations

from pathlib import Path

import pytest

from klamm.broker.config import BrokerConfig
from klamm.broker.node import Broker
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch, parse_header


def batch(seq: int, count: int = 2, pid: int = 42) -> bytes:
    records = [Record(i, 1000, None, b"v") for i in range(count)]
    return build_batch(RecordBatch(records, producer_id=pid, producer_epoch=0, base_sequence=seq))


async def _broker(data_dir: Path) -> Broker:
    broker = Broker(BrokerConfig(port=0, data_dir=data_dir, flush_policy="os"))
    await broker.start()
    return broker


def produce(broker: Broker, data: bytes) -> tuple[ErrorCode, int]:
    partition = broker.partition("t", 0)
    assert partition is not None
    header = parse_header(data)
    producers = broker.producers
    check = producers.check_append(partition, header)
    if check is not None:
        return check.error, check.base_offset
    appended = partition.log.append(bytearray(data))
    producers.record_append(partition, header, appended.base_offset)
    return ErrorCode.none, appended.base_offset


@pytest.mark.parametrize("with_snapshot", [True, False])
async def test_duplicates_recognised_after_restart(tmp_path: Path, with_snapshot: bool) -> None:
    broker = await _broker(tmp_path)
    broker.create_topic("t", 1)
    coord = broker.transactions
    while (await coord.init_producer_id(None, 0))[0] < 42:
        pass  # produce refuses ids never handed out: make 42 one
    for i in range(3):
        assert produce(broker, batch(i * 2)) == (ErrorCode.none, i * 2)
    await broker.stop()
    snapshots = list(tmp_path.rglob("*.snapshot"))
    assert snapshots
    if not with_snapshot:
        for path in snapshots:
            path.unlink()

    broker = await _broker(tmp_path)
    try:
        assert produce(broker, batch(2)) == (ErrorCode.none, 2)  # a retry: original offset
        error, _ = produce(broker, batch(10))
        assert error == ErrorCode.out_of_order_sequence_number
        assert produce(broker, batch(6)) == (ErrorCode.none, 6)
    finally:
        await broker.stop()
