"""Produce/consume throughput with confluent-kafka: 1,000,000 x 100 B and 100,000 x 1 KiB.

Producer: acks=all, linger.ms=5 (otherwise defaults); one partition. Timed from the first
produce() to the end of flush(), i.e. until every message is acknowledged. Consumer: assign()
from the beginning, consume() in batches, timed from assign() to the last message (librdkafka
prefetches, so timing from the first message returned would miss most of the work).
Runs against klamm (subprocess broker, fresh data dir, fsync before acknowledging acks=all)
and, where available, Tansu (memory storage) in the same run.

    python -m bench.throughput [--quick] [--no-tansu]
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass

from bench.brokers import Broker, brokers, create_topic
from bench.producing import produce_all
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

WORKLOADS = [("1M x 100B", 1_000_000, 100), ("100k x 1KiB", 100_000, 1024)]


@dataclass
class Result:
    broker: str
    workload: str
    count: int
    size: int
    produce_s: float
    consume_s: float

    @property
    def produce_rate(self) -> float:
        return self.count / self.produce_s

    @property
    def consume_rate(self) -> float:
        return self.count / self.consume_s

    def mb(self, rate: float) -> float:
        return rate * self.size / 1e6


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def produce(
    bootstrap: str,
    topic: str,
    count: int,
    size: int,
    progress: Progress,
    label: str,
    partitions: int = 1,
    extra: dict[str, object] | None = None,
) -> float:
    """Seconds to produce `count` messages of `size` bytes, spread round-robin over
    `partitions` (from 0), until every one is acknowledged; `extra`: more producer settings."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "enable.idempotence": False,
            **(extra or {}),
        }
    )
    task = progress.add_task(f"{label}: produce", total=count)
    elapsed = produce_all(
        producer, topic, b"x" * size, count, partitions=partitions,
        on_progress=lambda sent: progress.update(task, completed=sent),
    )  # fmt: skip
    progress.update(task, completed=count)
    return elapsed


def consume(
    bootstrap: str,
    topic: str,
    count: int,
    progress: Progress,
    label: str,
    partitions: int = 1,
    timeout: float | None = None,
) -> float:
    """Seconds from assign() to the `count`th message, reading `partitions` from the start.
    With `timeout`, a consumer still short of `count` then stops and the seconds are
    extrapolated from its rate so far (a broker slow at this bounds the run, not fails it)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    task = progress.add_task(f"{label}: consume", total=count)
    try:
        start = time.perf_counter()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = 0
        deadline = time.monotonic() + (timeout or 300)
        while got < count:
            if time.monotonic() > deadline:
                if timeout is None or not got:
                    raise RuntimeError(f"consumed only {got} of {count}")
                return (time.perf_counter() - start) * count / got
            batch = consumer.consume(10_000, 1.0)
            if not batch:
                continue
            for msg in batch:
                if msg.error():
                    raise KafkaException(msg.error())
            got += len(batch)
            progress.update(task, completed=got)
        return time.perf_counter() - start
    finally:
        consumer.close()


def run_workloads(broker: Broker, console: Console, quick: bool = False) -> list[Result]:
    results = []
    with _progress(console) as progress:
        for name, count, size in WORKLOADS:
            if quick:
                count //= 10
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            create_topic(broker.bootstrap, topic)
            label = f"{broker.name} {name}"
            produce_s = produce(broker.bootstrap, topic, count, size, progress, label)
            consume_s = consume(broker.bootstrap, topic, count, progress, label)
            results.append(Result(broker.name, name, count, size, produce_s, consume_s))
            console.print(
                f"  {label}: produce {count / produce_s:,.0f} msg/s, "
                f"consume {count / consume_s:,.0f} msg/s"
            )
    return results


def render(results: list[Result], console: Console) -> None:
    table = Table(
        title="Throughput (confluent-kafka, acks=all, linger.ms=5, 1 partition)",
        caption="ratio = klamm / Tansu (klamm fsyncs before acking; Tansu keeps data in memory)",
    )
    for col in (
        "workload",
        "broker",
        "produce msg/s",
        "produce MB/s",
        "consume msg/s",
        "consume MB/s",
    ):
        table.add_column(col, justify="left" if col in ("workload", "broker") else "right")
    by_key = {(r.workload, r.broker): r for r in results}
    for name, _count, _size in WORKLOADS:
        for broker in ("klamm", "Tansu"):
            r = by_key.get((name, broker))
            if r is None:
                continue
            table.add_row(
                name,
                broker,
                f"{r.produce_rate:,.0f}",
                f"{r.mb(r.produce_rate):,.1f}",
                f"{r.consume_rate:,.0f}",
                f"{r.mb(r.consume_rate):,.1f}",
            )
        k, t = by_key.get((name, "klamm")), by_key.get((name, "Tansu"))
        if k and t:
            table.add_row(
                name,
                "[bold]ratio[/bold]",
                f"[bold]{k.produce_rate / t.produce_rate:.2f}x[/bold]",
                "",
                f"[bold]{k.consume_rate / t.consume_rate:.2f}x[/bold]",
                "",
                end_section=True,
            )
    console.print(table)


def main(argv: list[str] | None = None, console: Console | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages")
    parser.add_argument("--no-tansu", action="store_true", help="klamm only")
    args = parser.parse_args(argv)
    console = console or Console()
    results: list[Result] = []
    for name, manager in brokers(with_tansu=not args.no_tansu):
        console.print(f"[bold]{name}[/bold]")
        with manager as broker:
            results += run_workloads(broker, console, quick=args.quick)
    render(results, console)
    return results


if __name__ == "__main__":
    main()
