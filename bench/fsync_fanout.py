"""One client's fsync fan-out against another client's acks=all latency (issue 11, finding 14).

The victim (this process) sends one small acks=all record at a time to a 1-partition topic and
times each delivery. The adversary (another process) writes one record to each of the 2,000
partitions of its own topic every 0.2 s with acks=0: nothing waits for those fsyncs, but every
group-commit round used to include all of them, so the victim's acks=all waited behind
thousands of unrelated fsyncs. The table shows the victim alone, then with the adversary.

    python -m bench.fsync_fanout [--seconds 10] [--partitions 2000] [--interval 0.2]

klamm runs as a subprocess broker on a fresh data directory with the fsync flush policy.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass
from multiprocessing.synchronize import Event

from bench.brokers import create_topic, klamm_broker
from rich.console import Console
from rich.table import Table


@dataclass
class Phase:
    name: str
    latencies_ms: list[float]
    adversary_records: int

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def _adversary(
    bootstrap: str, topic: str, partitions: int, interval: float, stop: Event, sent: mp.Value
) -> None:  # type: ignore[type-arg]
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": 0, "linger.ms": 5})
    while not stop.is_set():
        started = time.monotonic()
        for partition in range(partitions):
            producer.produce(topic, b"x" * 100, partition=partition)
        producer.flush(30)
        with sent.get_lock():
            sent.value += partitions
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    producer.flush(30)


def _victim(bootstrap: str, topic: str, seconds: float) -> list[float]:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    latencies: list[float] = []
    done: list[float] = []

    def delivered(err: object, _msg: object) -> None:
        if err is None:
            done.append(time.perf_counter())

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done.clear()
        sent = time.perf_counter()
        producer.produce(topic, b"v" * 100, partition=0, on_delivery=delivered)
        producer.flush(30)
        if done:
            latencies.append((done[0] - sent) * 1000)
    return latencies


def measure(seconds: float, partitions: int, interval: float) -> list[Phase]:
    phases = []
    with klamm_broker() as broker:
        victim_topic = f"victim-{uuid.uuid4().hex[:8]}"
        flood_topic = f"fanout-{uuid.uuid4().hex[:8]}"
        create_topic(broker.bootstrap, victim_topic)
        create_topic(broker.bootstrap, flood_topic, partitions)
        _victim(broker.bootstrap, victim_topic, 1.0)  # warm up: connections, metadata
        phases.append(Phase("victim alone", _victim(broker.bootstrap, victim_topic, seconds), 0))
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        sent = ctx.Value("q", 0)
        adversary = ctx.Process(
            target=_adversary,
            args=(broker.bootstrap, flood_topic, partitions, interval, stop, sent),
            daemon=True,
        )
        adversary.start()
        try:
            time.sleep(2.0)  # let the flood reach its steady state
            before = sent.value
            latencies = _victim(broker.bootstrap, victim_topic, seconds)
            flooded = sent.value - before
        finally:
            stop.set()
            adversary.join(30)
            if adversary.is_alive():
                adversary.kill()
                adversary.join()
        phases.append(Phase(f"with acks=0 fan-out to {partitions} partitions", latencies, flooded))
    return phases


def render(phases: list[Phase], seconds: float, interval: float, console: Console) -> None:
    table = Table(title=f"Victim acks=all latency, {seconds:g} s per phase (klamm, fsync)")
    for col in ("phase", "acks=all sends", "p50 ms", "p99 ms", "max ms", "adversary rec/s"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for p in phases:
        table.add_row(
            p.name,
            str(len(p.latencies_ms)),
            f"{p.pct(0.5):.2f}",
            f"{p.pct(0.99):.2f}",
            f"{max(p.latencies_ms, default=float('nan')):.2f}",
            f"{p.adversary_records / seconds:.0f}",
        )
    console.print(table)
    console.print(f"adversary: one 100-byte record per partition every {interval:g} s, acks=0")


def main(argv: list[str] | None = None, console: Console | None = None) -> list[Phase]:
    parser = argparse.ArgumentParser(description="acks=all latency under an fsync fan-out")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    console = console or Console()
    phases = measure(args.seconds, args.partitions, args.interval)
    render(phases, args.seconds, args.interval, console)
    return phases


if __name__ == "__main__":
    main()
