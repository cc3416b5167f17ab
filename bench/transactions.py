"""Transactional throughput: transactions/s and messages/s for transactions of 1, 100 and 1000
messages (confluent-kafka transactional producer; each transaction = begin, produce N, commit).

    .venv/bin/python bench/transactions.py                  # a fresh klamm broker (subprocess)
    .venv/bin/python bench/transactions.py --bootstrap HOST:PORT --seconds 5

Every transaction's commit waits for the coordinator's records and the markers to be durable,
so with one producer the transaction rate is bounded by fsync round trips; messages/s shows
how batching amortises that.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import Producer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from brokers import create_topic, klamm_broker

SIZES = (1, 100, 1000)
PAYLOAD = b"x" * 100


def run(bootstrap: str, size: int, seconds: float) -> tuple[int, float]:
    """(transactions committed, elapsed seconds) for transactions of `size` messages."""
    topic = f"bench-txn-{size}-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic)
    producer = Producer({
        "bootstrap.servers": bootstrap, "transactional.id": f"bench-{uuid.uuid4().hex[:8]}",
        "linger.ms": 5, "batch.num.messages": 10000,
    })  # fmt: skip
    producer.init_transactions(30)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        producer.begin_transaction()
        for _ in range(size):
            while True:
                try:
                    producer.produce(topic, PAYLOAD, partition=0)
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.commit_transaction(30)
        done += 1
    return done, time.perf_counter() - start


@contextlib.contextmanager
def _target(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
    else:
        with klamm_broker() as broker:
            yield broker.bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing cluster (default: a fresh klamm broker)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per transaction size")
    args = parser.parse_args()
    console = Console()
    table = Table(title="klamm transactional throughput (1 producer, 100-byte messages)")
    for column in ("messages/txn", "transactions", "seconds", "transactions/s", "messages/s"):
        table.add_column(column, justify="right")
    with _target(args.bootstrap) as bootstrap:
        for size in SIZES:
            with console.status(f"transactions of {size} message(s)..."):
                done, elapsed = run(bootstrap, size, args.seconds)
            table.add_row(str(size), str(done), f"{elapsed:.1f}", f"{done / elapsed:,.0f}",
                          f"{done * size / elapsed:,.0f}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
