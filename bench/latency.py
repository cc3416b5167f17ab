"""End-to-end latency at a fixed rate: 1,000 msg/s for 10 s, confluent-kafka with default settings.

The producer (this process) stamps time.time_ns() into each value and paces sends to the rate;
a consumer in another process (assign at OFFSET_END, poll loop) computes receive time minus the
stamp. Both use the client's defaults (only bootstrap.servers, plus the group.id that confluent
requires even for assign()), so librdkafka's fetch.wait.max.ms=500 and linger.ms=5 apply: a
broker that does not wake a parked Fetch on append shows up as ~fetch.wait.max.ms latency.

    python -m bench.latency [--rate 1000] [--seconds 10] [--no-tansu]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench.brokers import Broker, brokers, create_topic
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

MAGIC = b"lat:"


@dataclass
class Result:
    broker: str
    sent: int
    received: int
    latencies_ms: list[float]

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def _consumer(bootstrap: str, topic: str, expected: int, conn: Connection) -> None:
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4().hex[:8]}"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    latencies: list[float] = []
    ready_sent = False
    warm_deadline = time.monotonic() + 30
    deadline = None
    while len(latencies) < expected:
        msg = consumer.poll(0.05)
        now = time.time_ns()
        if msg is None or msg.error():
            if not ready_sent and time.monotonic() > warm_deadline:
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            continue
        value = msg.value() or b""
        if value == b"warmup":
            if not ready_sent:
                conn.send("ready")
                ready_sent = True
                deadline = time.monotonic() + 60
            continue
        if value.startswith(MAGIC):
            latencies.append((now - int(value[len(MAGIC) :])) / 1e6)
    consumer.close()
    conn.send(latencies)


def measure(broker: Broker, rate: int, seconds: float, progress: Progress) -> Result:
    from confluent_kafka import Producer

    topic = f"latency-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic)
    total = int(rate * seconds)
    parent, child = mp.get_context("spawn").Pipe()
    proc = mp.get_context("spawn").Process(
        target=_consumer, args=(broker.bootstrap, topic, total, child), daemon=True
    )
    proc.start()
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    try:
        # Warm up until the consumer has its position and sees data.
        deadline = time.monotonic() + 30
        while not parent.poll(0.1):
            producer.produce(topic, b"warmup", partition=0)
            producer.poll(0)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{broker.name}: consumer never became ready")
        parent.recv()

        task = progress.add_task(f"{broker.name}: {rate} msg/s for {seconds:g} s", total=total)
        interval = 1.0 / rate
        start = time.perf_counter()
        for i in range(total):
            target = start + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            producer.produce(topic, MAGIC + str(time.time_ns()).encode(), partition=0)
            producer.poll(0)
            if i % 100 == 0:
                progress.update(task, completed=i)
        producer.flush(30)
        progress.update(task, completed=total)
        latencies: list[float] = parent.recv() if parent.poll(90) else []
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return Result(broker.name, total, len(latencies), latencies)


def render(results: list[Result], rate: int, seconds: float, console: Console) -> None:
    table = Table(title=f"End-to-end latency, {rate} msg/s for {seconds:g} s, client defaults")
    for col in ("broker", "received", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms"):
        table.add_column(col, justify="left" if col == "broker" else "right")
    for r in results:
        table.add_row(
            r.broker,
            f"{r.received}/{r.sent}",
            f"{r.pct(0.5):.2f}",
            f"{r.pct(0.99):.2f}",
            f"{r.pct(0.999):.2f}",
            f"{max(r.latencies_ms, default=float('nan')):.2f}",
            f"{statistics.fmean(r.latencies_ms) if r.latencies_ms else float('nan'):.2f}",
        )
    console.print(table)


def main(argv: list[str] | None = None, console: Console | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description="end-to-end latency at a fixed rate")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-tansu", action="store_true")
    args = parser.parse_args(argv)
    console = console or Console()
    results = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        for _name, manager in brokers(with_tansu=not args.no_tansu):
            with manager as broker:
                results.append(measure(broker, args.rate, args.seconds, progress))
    render(results, args.rate, args.seconds, console)
    return results


if __name__ == "__main__":
    main()
