"""Consumer-group benchmark: time from subscribe to first message for a new one-member group,
and rebalance time when a third member joins a group of two (6 partitions, until 2+2+2).

confluent-kafka with its default settings for the first measure (session.timeout.ms 45 s, so a
broker that holds a new group's first join for a fixed delay shows it), and
heartbeat.interval.ms=500 for the rebalance (members learn of a rebalance at their next
heartbeat). Each measure is repeated and the median reported, against klamm (subprocess broker)
and, where it can be installed, Tansu in the same run (bench/brokers.py).

    python -m bench.groups [--rounds 5] [--no-tansu]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from dataclasses import dataclass, field

from bench.brokers import Broker, brokers, create_topic
from confluent_kafka import Consumer, Producer
from rich.console import Console
from rich.table import Table

TIMEOUT_S = 60.0


@dataclass
class Result:
    broker: str
    first_message_s: list[float] = field(default_factory=list)
    rebalance_s: list[float] = field(default_factory=list)


def _consumer(bootstrap: str, group: str, **extra: object) -> Consumer:
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         **extra}
    )  # fmt: skip


def first_message(bootstrap: str) -> float:
    topic = f"bench-first-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, b"hello")
    producer.flush(10)
    consumer = _consumer(bootstrap, f"bench-{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    consumer.subscribe([topic])
    try:
        while time.monotonic() - started < TIMEOUT_S:
            msg = consumer.poll(0.01)
            if msg is not None and not msg.error():
                return time.monotonic() - started
        return float("nan")
    finally:
        consumer.close()


def third_member_rebalance(bootstrap: str) -> float:
    topic = f"bench-rebalance-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, 6)
    group = f"bench-{uuid.uuid4().hex[:8]}"
    conf = {"heartbeat.interval.ms": 500, "session.timeout.ms": 6000}
    members = [_consumer(bootstrap, group, **conf) for _ in range(2)]
    for m in members:
        m.subscribe([topic])

    def wait_split(consumers: list[Consumer], sizes: set[int]) -> bool:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            for c in consumers:
                c.poll(0.005)
            if {len(c.assignment()) for c in consumers} == sizes:
                return True
        return False

    try:
        if not wait_split(members, {3}):
            return float("nan")
        third = _consumer(bootstrap, group, **conf)
        members.append(third)
        started = time.monotonic()
        third.subscribe([topic])
        ok = wait_split(members, {2})
        return time.monotonic() - started if ok else float("nan")
    finally:
        for m in members:
            m.close()


def measure(broker: Broker, rounds: int, console: Console) -> Result:
    result = Result(broker.name)
    for i in range(rounds):
        console.log(f"{broker.name}: round {i + 1}/{rounds}")
        result.first_message_s.append(first_message(broker.bootstrap))
        result.rebalance_s.append(third_member_rebalance(broker.bootstrap))
    return result


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:,.0f} ms  (min {min(values) * 1000:,.0f})"


def render(results: list[Result], console: Console) -> None:
    table = Table(title="consumer groups (confluent-kafka; median of rounds)")
    table.add_column("broker")
    table.add_column("subscribe -> first message", justify="right")
    table.add_column("3rd member joins 2 -> 2+2+2", justify="right")
    for r in results:
        table.add_row(r.broker, _fmt(r.first_message_s), _fmt(r.rebalance_s))
    if len(results) == 2:
        a, b = results
        ratio = statistics.median(b.first_message_s) / statistics.median(a.first_message_s)
        rebalance = statistics.median(b.rebalance_s) / statistics.median(a.rebalance_s)
        table.caption = (
            f"{b.broker}/{a.broker}: first message {ratio:.1f}x, rebalance {rebalance:.1f}x"
        )
    console.print(table)


def main(argv: list[str] | None = None, console: Console | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description="consumer-group latency benchmark")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-tansu", action="store_true")
    args = parser.parse_args(argv)
    console = console or Console()
    results = []
    for _name, manager in brokers(with_tansu=not args.no_tansu):
        with manager as broker:
            results.append(measure(broker, args.rounds, console))
    render(results, console)
    return results


if __name__ == "__main__":
    main()
