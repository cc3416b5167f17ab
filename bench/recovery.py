"""Start-up after SIGKILL as a function of the data held, and of how much of it was not yet
known durable; and what a lagging consumer costs a producer.

    python -m bench.recovery [--gb 1 10] [--partitions 1 1000] [--unflushed-mb 0 64]
    python -m bench.recovery --lagging [--gb 2]

Recovery: a child process writes the data through the storage layer as a broker does (batches
of 64 x 1 KiB records, every partition flushed, i.e. acknowledged acks=all, its recovery point
checkpointed and its producer state snapshotted, as a broker does every minute and every 30 s:
the state of a broker killed a minute after the data was acknowledged), optionally
appends --unflushed-mb more without flushing, then exits without closing anything (the files
are as a SIGKILL leaves them: in the page cache, no clean-shutdown marker). `python -m klamm
broker` is then timed from its start to listening; it recovers every log first.

Lagging consumer: klamm (subprocess, fsync) holds --gb of old data in a one-partition topic; an
acks=all producer appends 100 B messages to it for 5 s, alone and then while a consumer (another
process) reads the partition from the start as fast as it can. Rounds alternate the two; the
page cache holds the old data (this machine has the memory), so this measures the broker's
sharing of CPU and locks, not the disk.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.brokers import Broker, create_topic, klamm_broker
from bench.partitions import BrokerProcess
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from klamm.protocol.record_batch import Record, RecordBatch, build_batch

TOPIC = "recovery"
RECORD = 1000  # bytes of value per record
PER_BATCH = 64  # records per batch: a 64 KiB batch, librdkafka's size at high rates


@dataclass
class RecoveryResult:
    data_gb: float
    partitions: int
    unflushed_mb: float
    start_s: float


def _write(data_dir: str, total: int, partitions: int, unflushed: int) -> None:
    """Child process: write the data, flush it, write `unflushed` more, exit uncleanly."""
    from klamm.storage.log_manager import LogManager

    def now() -> int:
        return int(time.time() * 1000)

    manager = LogManager(Path(data_dir), now)
    manager.load()
    manager.create_topic(TOPIC, partitions, {"retention.ms": "-1"})
    records = [Record(i, now(), None, os.urandom(RECORD)) for i in range(PER_BATCH)]
    batch = bytes(build_batch(RecordBatch(records=records)))
    logs = [manager.log(TOPIC, p) for p in range(partitions)]
    written = 0
    i = 0
    while written < total + unflushed:
        plog = logs[i % partitions]
        assert plog is not None
        plog.append(bytearray(batch))
        written += len(batch)
        i += 1
        if written >= total and written - len(batch) < total:
            manager.flush_all()  # everything so far acknowledged acks=all
            # ... and a broker running a minute later has checkpointed it (every
            # log.flush.offset.checkpoint.interval.ms)
            checkpoint = getattr(manager, "checkpoint_recovery_points", None)
            if checkpoint is not None:  # (older klamm versions, compared with PYTHONPATH)
                checkpoint()
            _snapshot_producers(manager, partitions)
    if not unflushed:
        manager.flush_all()
    os._exit(0)  # no close: the files are as a SIGKILL leaves them


def _snapshot_producers(manager: Any, partitions: int) -> None:
    """Write each partition's producer-state snapshot, as the broker does every 30 s
    (broker/transactions/producers.py): a restart replays only the log after it."""
    from klamm.broker.transactions.producers import PartitionProducers
    from klamm.storage.producer_state import open_directory, write_snapshot_at

    topic_id = manager.topic(TOPIC).topic_id
    for p in range(partitions):
        plog = manager.log(TOPIC, p)
        dir_fd = open_directory(plog.directory)
        try:
            write_snapshot_at(dir_fd, PartitionProducers().snapshot(plog.log_end_offset, topic_id))
        finally:
            os.close(dir_fd)


def measure(
    data_gb: float, partitions: int, unflushed_mb: float, work_dir: Path | None = None
) -> RecoveryResult:
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        child = mp.get_context("spawn").Process(
            target=_write,
            args=(str(data_dir), int(data_gb * 1e9), partitions, int(unflushed_mb * 1e6)),
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"the data writer failed ({child.exitcode})")
        # Let the kernel write back the gigabytes just written: the start-up timed below must
        # not share the disk with that (a broker killed in steady state has little dirty data).
        os.sync()
        broker = BrokerProcess(data_dir, 0, {"max.broker.partitions": str(max(partitions, 10_000))})
        try:
            start_s = broker.start()
        finally:
            broker.stop()
    return RecoveryResult(data_gb, partitions, unflushed_mb, start_s)


def recovery_table(results: list[RecoveryResult]) -> Table:
    out = Table(title="klamm: start-up after SIGKILL (process start to listening)")
    for column in ("data GB", "partitions", "unflushed MB", "start-up s"):
        out.add_column(column, justify="right")
    for r in results:
        out.add_row(f"{r.data_gb:g}", str(r.partitions), f"{r.unflushed_mb:g}", f"{r.start_s:.2f}")
    return out


# --- lagging consumer --------------------------------------------------------------------------


def _fill(bootstrap: str, topic: str, total_bytes: int) -> int:
    """Produce `total_bytes` of 1 KiB messages (acks=1, big batches); returns the count."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 20, "batch.size": 1 << 20,
         "enable.idempotence": False}
    )  # fmt: skip
    payload = os.urandom(1024)
    count = total_bytes // len(payload)
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, payload, partition=0)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(300):
        raise RuntimeError("old data not delivered")
    return count


def _produce_for(bootstrap: str, topic: str, seconds: float) -> float:
    """msg/s of an acks=all producer of 100 B messages running flat out for `seconds`."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": False}
    )
    delivered = [0]

    def report(err: object, _msg: object) -> None:
        if err is None:
            delivered[0] += 1

    payload = b"x" * 100
    producer.produce(topic, payload, partition=0)
    producer.flush(30)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        try:
            producer.produce(topic, payload, partition=0, on_delivery=report)
        except BufferError:
            producer.poll(0.001)
        producer.poll(0)
    producer.flush(60)
    return delivered[0] / (time.perf_counter() - start)


def _read_old(bootstrap: str, topic: str, stop: Any, read: Any) -> None:
    """A child process: read `topic` from the start until `stop` is set, counting in `read`."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lag-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        while not stop.is_set():
            got = len(consumer.consume(10_000, 0.2))
            with read.get_lock():
                read.value += got
    finally:
        consumer.close()


def lagging(broker: Broker, old_gb: float, rounds: int, console: Console) -> dict[str, object]:
    # One partition: the reader reads its old data while the producer appends to its end.
    old = new = f"lag-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, old)
    console.print(f"  writing {old_gb:g} GB of old data")
    _fill(broker.bootstrap, old, int(old_gb * 1e9))
    alone: list[float] = []
    with_reader: list[float] = []
    read_rates: list[float] = []
    for _ in range(rounds):
        alone.append(_produce_for(broker.bootstrap, new, 5))
        # The reader is a process of its own, as a real lagging consumer is (in this one, it
        # would take the producer's GIL).
        ctx = mp.get_context("spawn")
        stop, read = ctx.Event(), ctx.Value("q", 0)
        reader = ctx.Process(target=_read_old, args=(broker.bootstrap, old, stop, read))
        reader.start()
        deadline = time.monotonic() + 30
        while read.value == 0 and time.monotonic() < deadline:  # the reader is fetching
            time.sleep(0.05)
        started, before = time.perf_counter(), read.value
        with_reader.append(_produce_for(broker.bootstrap, new, 5))
        read_rates.append((read.value - before) / (time.perf_counter() - started))
        stop.set()
        reader.join(30)
    return {
        "old_gb": old_gb,
        "alone": alone,
        "with_reader": with_reader,
        "reader_msgs_per_s": read_rates,
    }


def lagging_table(result: dict[str, object]) -> Table:
    out = Table(title=f"klamm: acks=all producer (100 B) with a consumer reading "
                      f"{result['old_gb']} GB of old data (1 KiB messages)")  # fmt: skip
    for column in ("producer", "msg/s median", "range"):
        out.add_column(column, justify="left" if column == "producer" else "right")
    for label, key in (("alone", "alone"), ("with the lagging reader", "with_reader"),
                       ("the reader itself", "reader_msgs_per_s")):  # fmt: skip
        values: list[float] = result[key]  # type: ignore[assignment]
        out.add_row(label, f"{statistics.median(values):,.0f}",
                    f"{min(values):,.0f}-{max(values):,.0f}")  # fmt: skip
    return out


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description="klamm start-up after SIGKILL vs data size")
    parser.add_argument("--gb", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--unflushed-mb", type=float, nargs="+", default=[0])
    parser.add_argument("--lagging", action="store_true", help="the lagging-consumer test")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    console = console or Console()
    if args.lagging:
        with klamm_broker() as broker:
            result = lagging(broker, args.gb[0], args.rounds, console)
        console.print(lagging_table(result))
        return
    results = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                        console=console, transient=True)  # fmt: skip
    with progress:
        for gb in args.gb:
            for partitions in args.partitions:
                for unflushed in args.unflushed_mb:
                    task = progress.add_task(f"{gb:g} GB over {partitions}, {unflushed:g} MB "
                                             "unflushed", total=None)  # fmt: skip
                    results.append(measure(gb, partitions, unflushed))
                    progress.remove_task(task)
    console.print(recovery_table(results))


if __name__ == "__main__":
    main()
