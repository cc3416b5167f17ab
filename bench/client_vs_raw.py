"""klamm's client against raw confluent-kafka, same broker, same run.

    python -m bench.client_vs_raw                     # embedded klamm broker (subprocess)
    python -m bench.client_vs_raw -b 127.0.0.1:9092   # any cluster
    python -m bench.client_vs_raw -n 500000 -s 100 --rounds 9

Measures, for N messages of S bytes:
- produce: raw `Producer.produce` in a loop + `flush()`, vs klamm `send()` of 1,000-message chunks
  all in flight at once (how an asyncio app produces at volume), messages built with
  `Message(value=...)` as the README does, and as dict literals as KafkaJS code does (the same
  dict; the literal skips the constructor call);
- consume: raw `Consumer.consume(1000)` loop, vs klamm `run(each_batch=...)` (iterating
  `batch.messages`, and reading the `batch.values()` column) and `run(each_message=...)`; each
  handler reads every message's value. Consume time runs from the
  first message to the last, so group-join time (the same for both) is not counted.

Both sides use the same librdkafka settings (acks=all, linger 5 ms). Target: klamm >= 0.8x raw for
produce and each_batch. Each round runs every measurement once, raw first; the result is the median
of the rounds' klamm/raw ratios. Absolute numbers on a shared machine drift by tens of percent
between minutes (the broker shares the two cores), so a best-of-N per side compares different
moments; back-to-back pairs do not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import time
import uuid
from typing import Any

import confluent_kafka
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from klamm import Kafka, Message

CHUNK = 1_000
# The raw consumer gets the settings klamm's consumer uses, so both fetch alike.
CONSUMER_TUNING = {
    "fetch.wait.max.ms": 100,
    "session.timeout.ms": 6_000,
    "fetch.queue.backoff.ms": 10,
}


def raw_produce(bootstrap: str, topic: str, n: int, value: bytes) -> float:
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "acks": -1, "linger.ms": 5, "enable.idempotence": False}
    )
    errors: list[Any] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    producer.list_topics(topic, timeout=10)  # connect before the clock starts, as klamm's connect()
    started = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                producer.produce(topic, value, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.001)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"raw produce failed: {errors[0]}")
    return elapsed


async def klamm_produce(
    bootstrap: str, topic: str, n: int, value: bytes, literals: bool = False
) -> float:
    kafka = Kafka(brokers=[bootstrap], client_id="bench")
    async with kafka.producer(linger_ms=5) as producer:
        await producer.send(topic=topic, messages=[Message(value=value)])  # connect and warm up
        started = time.perf_counter()
        sends = []
        for first in range(0, n, CHUNK):
            size = min(CHUNK, n - first)
            chunk: list[Message] = (
                [{"value": value} for _ in range(size)]
                if literals
                else [Message(value=value) for _ in range(size)]
            )
            sends.append(asyncio.ensure_future(producer.send(topic=topic, messages=chunk)))
        await asyncio.gather(*sends)
        return time.perf_counter() - started


def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **CONSUMER_TUNING,
        }
    )
    consumer.subscribe([topic])
    seen, started = 0, None
    nbytes = 0
    try:
        while seen < n:
            for msg in consumer.consume(CHUNK, 1.0):
                if msg.error() is not None:
                    continue
                if started is None:
                    started = time.perf_counter()
                nbytes += len(msg.value() or b"")
                seen += 1
            # Like klamm's runner, commit once per fetched batch.
            if seen:
                consumer.commit(asynchronous=True)
        assert started is not None
        return time.perf_counter() - started
    finally:
        consumer.close()


async def klamm_consume(bootstrap: str, topic: str, n: int, mode: str) -> float:
    kafka = Kafka(brokers=[bootstrap], client_id="bench")
    consumer = kafka.consumer(
        group_id=f"bench-{mode}-{uuid.uuid4().hex[:6]}",
        max_wait_time_ms=100,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=500,
    )
    seen = 0
    started: float | None = None
    done = asyncio.Event()
    nbytes = 0

    async def each_message(payload: Any) -> None:
        nonlocal seen, started, nbytes
        if started is None:
            started = time.perf_counter()
        nbytes += len(payload.message.value or b"")
        seen += 1
        if seen >= n:
            done.set()

    async def each_batch(payload: Any) -> None:
        nonlocal seen, started, nbytes
        if started is None:
            started = time.perf_counter()
        for message in payload.batch.messages:
            nbytes += len(message.value or b"")
        seen += len(payload.batch.messages)
        if seen >= n:
            done.set()

    async def each_batch_values(payload: Any) -> None:
        nonlocal seen, started, nbytes
        if started is None:
            started = time.perf_counter()
        values = payload.batch.values()
        for value in values:
            nbytes += len(value or b"")
        seen += len(values)
        if seen >= n:
            done.set()

    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        if mode == "each_batch":
            await consumer.run(each_batch=each_batch)
        elif mode == "each_batch_values":
            await consumer.run(each_batch=each_batch_values)
        else:
            await consumer.run(each_message=each_message)
        await asyncio.wait_for(done.wait(), 300)
        assert started is not None
        return time.perf_counter() - started


@dataclasses.dataclass
class Row:
    name: str
    target: float | None
    raw_s: list[float] = dataclasses.field(default_factory=list)
    klamm_s: list[float] = dataclasses.field(default_factory=list)

    def ratio(self) -> float:
        """The median of the rounds' ratios: each round times raw and klamm back to back, so a
        machine that slows down for a while slows both sides of that round alike."""
        return statistics.median(r / k for r, k in zip(self.raw_s, self.klamm_s, strict=True))


def run(bootstrap: str, n: int, size: int, rounds: int, console: Console) -> Table:
    value = b"x" * size
    rows = {
        "message": Row("produce (send, Message(...))", 0.8),
        "literals": Row("produce (send, dict literals)", 0.8),
        "each_batch": Row("consume each_batch, batch.messages", 0.8),
        "each_batch_values": Row("consume each_batch, batch.values()", 0.8),
        "each_message": Row("consume each_message", None),
    }
    source = f"bench-source-{uuid.uuid4().hex}"
    raw_produce(bootstrap, source, n, value)

    def topic() -> str:
        return f"bench-{uuid.uuid4().hex}"

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rounds", total=rounds)
        for _ in range(rounds):
            raw_s = raw_produce(bootstrap, topic(), n, value)
            for key, literals in (("message", False), ("literals", True)):
                rows[key].raw_s.append(raw_s)
                rows[key].klamm_s.append(
                    asyncio.run(klamm_produce(bootstrap, topic(), n, value, literals))
                )
            raw_s = raw_consume(bootstrap, source, n)
            for mode in ("each_batch", "each_batch_values", "each_message"):
                rows[mode].raw_s.append(raw_s)
                rows[mode].klamm_s.append(asyncio.run(klamm_consume(bootstrap, source, n, mode)))
            progress.advance(task)

    table = Table(
        title=f"klamm client vs raw confluent-kafka ({n:,} x {size} B, {rounds} rounds)",
        caption="msg/s: the best round; klamm / raw: the median of the rounds' ratios",
    )
    table.add_column("operation")
    table.add_column("raw msg/s", justify="right")
    table.add_column("klamm msg/s", justify="right")
    table.add_column("klamm / raw", justify="right")
    table.add_column("range", justify="right")
    table.add_column("target", justify="right")
    for row in rows.values():
        ratio = row.ratio()
        ratios = [r / k for r, k in zip(row.raw_s, row.klamm_s, strict=True)]
        style = "green" if row.target is None or ratio >= row.target else "red"
        table.add_row(
            row.name,
            f"{n / min(row.raw_s):,.0f}",
            f"{n / min(row.klamm_s):,.0f}",
            f"[{style}]{ratio:.2f}x[/{style}]",
            f"{min(ratios):.2f}-{max(ratios):.2f}",
            f">= {row.target}x" if row.target else "-",
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-b", "--bootstrap", help="a running cluster (default: embedded broker)")
    parser.add_argument("-n", "--messages", type=int, default=200_000)
    parser.add_argument("-s", "--size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    console = Console()
    with contextlib.ExitStack() as stack:
        bootstrap = args.bootstrap
        if bootstrap is None:
            from klamm.testing import EmbeddedBroker

            # A separate process, so the broker does not share the clients' GIL.
            bootstrap = stack.enter_context(EmbeddedBroker(mode="subprocess")).bootstrap
        console.print(run(bootstrap, args.messages, args.size, args.rounds, console))


if __name__ == "__main__":
    main()
