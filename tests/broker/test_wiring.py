"""How the broker is put together (issue 14, item 1): it builds its coordinators in its
constructor, each given its collaborators typed; there is no service dictionary and no hook
assigned after construction; they start and stop in a fixed order."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from klamm.broker.config import BrokerConfig
from klamm.broker.groups import GroupCoordinator
from klamm.broker.node import Broker, StartupError
from klamm.broker.transactions import ProducerStateService, TransactionCoordinator
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch, parse_header
from klamm.storage.errors import KafkaStorageError

BROKER_SRC = Path(__file__).resolve().parents[2] / "src" / "klamm" / "broker"


def _config(data_dir: Path) -> BrokerConfig:
    return BrokerConfig(port=0, data_dir=data_dir, flush_policy="os")


def test_the_broker_builds_its_coordinators_with_their_collaborators(tmp_path: Path) -> None:
    broker = Broker(_config(tmp_path))  # not started: the wiring exists before any I/O
    assert isinstance(broker.groups, GroupCoordinator)
    assert isinstance(broker.producers, ProducerStateService)
    assert isinstance(broker.transactions, TransactionCoordinator)
    assert broker.transactions.producers is broker.producers
    assert broker.transactions.groups is broker.groups
    assert not hasattr(broker, "services")


def _attribute_uses(name: str) -> Iterator[str]:
    for path in sorted(BROKER_SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr == name:
                yield f"{path.relative_to(BROKER_SRC)}:{node.lineno}"


@pytest.mark.parametrize(
    "name",
    [
        "services",  # a service locator: what it returns is untyped
        "txn_check",  # hooks assigned after construction
        "stable_offset_hook",
        "aborted_hook",
        "isawaitable",  # a guard against not knowing what a collaborator returns
    ],
)
def test_no_service_lookups_and_no_assigned_hooks(name: str) -> None:
    assert list(_attribute_uses(name)) == []


def test_the_check_sees_attributes() -> None:
    """Guard against a scan that passes because it finds nothing."""
    assert list(_attribute_uses("groups"))


def _batch(pid: int, epoch: int, *, transactional: bool) -> bytes:
    records = [Record(0, 1_700_000_000_000, b"k", b"v")]
    return build_batch(
        RecordBatch(records, producer_id=pid, producer_epoch=epoch, base_sequence=0,
                    transactional=transactional)
    )  # fmt: skip


async def test_a_partition_learns_its_transactions_from_the_producer_state(
    tmp_path: Path,
) -> None:
    """A partition created after start-up, before anything was produced to it, reports the
    last stable offset and the aborted transactions the producer state holds."""
    broker = Broker(_config(tmp_path))
    await broker.start()
    try:
        broker.create_topic("t", 1)
        partition = broker.partition("t", 0)
        assert partition is not None
        coord = broker.transactions
        plain_pid, plain_epoch = await coord.init_producer_id(None, 60_000)
        pid, epoch = await coord.init_producer_id("tx", 60_000)
        assert await coord.add_partitions("tx", pid, epoch, [("t", 0)]) == {
            ("t", 0): ErrorCode.none
        }
        for data in (
            _batch(plain_pid, plain_epoch, transactional=False),
            _batch(pid, epoch, transactional=True),
        ):
            header = parse_header(data)
            assert broker.producers.check_append(partition, header) is None
            appended = partition.log.append(bytearray(data))
            broker.producers.record_append(partition, header, appended.base_offset)
            await broker.durability.appended(partition)
        assert partition.high_watermark == 2
        assert partition.last_stable_offset == 1  # the open transaction's first offset
        await coord.end_txn("tx", pid, epoch, commit=False)
        await broker.durability.appended(partition)
        assert partition.last_stable_offset == partition.high_watermark == 3
        assert partition.aborted_transactions(0, 3) == [{"producer_id": pid, "first_offset": 1}]
    finally:
        await broker.stop()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each coordinator's start and stop, in order."""
    made: list[str] = []
    for cls in (GroupCoordinator, ProducerStateService, TransactionCoordinator):
        for method in ("start", "stop"):
            real = getattr(cls, method)

            async def record(self: object, real: object = real, method: str = method) -> None:
                made.append(f"{method} {type(self).__name__}")
                await real(self)  # type: ignore[operator]

            monkeypatch.setattr(cls, method, record)
    return made


async def test_coordinators_start_in_order_and_stop_in_reverse(
    tmp_path: Path, calls: list[str]
) -> None:
    broker = Broker(_config(tmp_path))
    await broker.start()
    await broker.stop()
    assert calls == [
        "start GroupCoordinator",
        "start ProducerStateService",  # loaded before the coordinator writes markers through it
        "start TransactionCoordinator",
        "stop TransactionCoordinator",
        "stop ProducerStateService",
        "stop GroupCoordinator",
    ]


async def test_a_coordinator_that_cannot_start_stops_the_others_in_reverse(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(self: TransactionCoordinator) -> None:
        calls.append("start TransactionCoordinator")
        raise KafkaStorageError("disk gone")

    monkeypatch.setattr(TransactionCoordinator, "start", refuse)
    broker = Broker(_config(tmp_path))
    with pytest.raises(StartupError, match="the transactions coordinator cannot start: disk gone"):
        await broker.start()
    await broker.stop()  # after a failed start: stops nothing twice, starts nothing
    assert calls == [
        "start GroupCoordinator",
        "start ProducerStateService",
        "start TransactionCoordinator",
        "stop ProducerStateService",
        "stop GroupCoordinator",
    ]
