"""A huge CreateTopics against another client's produce latency (issue 11, finding 11).

The victim (this process) sends one small acks=all record at a time to an existing topic and
times each delivery, while an admin client creates one topic of 9,000 partitions (close to
Kafka's per-request maximum of 10,000, which with the internal topics would pass klamm's default
max.broker.partitions). Topic creation used to run on the broker's event loop, so every other
client waited for all of it; now it runs in the broker's admin thread.

    python -m bench.create_stall [--partitions 9000]

klamm runs as a subprocess broker on a fresh data directory with the fsync flush policy.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from bench.brokers import create_topic, klamm_broker
from rich.console import Console
from rich.table import Table


def _pct(data: list[float], q: float) -> float:
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def measure(partitions: int) -> tuple[float, list[float], list[float]]:
    """(creation seconds, victim latencies before it, victim latencies during it) in ms."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    with klamm_broker() as broker:
        victim_topic = f"victim-{uuid.uuid4().hex[:8]}"
        create_topic(broker.bootstrap, victim_topic)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})

        def send_until(stop: threading.Event | float, producer: Producer) -> list[float]:
            latencies: list[float] = []
            while not (
                stop.is_set() if isinstance(stop, threading.Event) else time.monotonic() > stop
            ):
                sent = time.perf_counter()
                producer.produce(victim_topic, b"v" * 100, partition=0)
                producer.flush(120)
                latencies.append((time.perf_counter() - sent) * 1000)
            return latencies

        before = send_until(time.monotonic() + 3, producer)
        done = threading.Event()
        took: list[float] = []

        def create_huge() -> None:
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            started = time.monotonic()
            future = admin.create_topics(
                [NewTopic(f"huge-{uuid.uuid4().hex[:8]}", partitions, 1)], request_timeout=300
            )
            for f in future.values():
                f.result(timeout=300)
            took.append(time.monotonic() - started)
            done.set()

        creator = threading.Thread(target=create_huge)
        creator.start()
        during = send_until(done, producer)
        creator.join()
        del producer  # closed before the broker stops: no reconnect noise
    return took[0], before, during


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description="produce latency during a huge CreateTopics")
    parser.add_argument("--partitions", type=int, default=9_000)
    args = parser.parse_args(argv)
    console = console or Console()
    took, before, during = measure(args.partitions)
    table = Table(title=f"acks=all latency while {args.partitions} partitions are created")
    for col in ("phase", "sends", "p50 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for name, data in (("before", before), (f"during the create ({took:.1f} s)", during)):
        table.add_row(
            name,
            str(len(data)),
            f"{_pct(data, 0.5):.2f}",
            f"{_pct(data, 0.99):.2f}",
            f"{max(data, default=float('nan')):.2f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
