"""`klamm bench`: produce and consume throughput, then end-to-end latency, against any cluster.

    klamm bench -b kafka:9092 --messages 200000 --size 512 --acks all
    klamm bench --embedded                     # a fresh klamm broker in a child process

Three phases on one fresh topic (deleted afterwards unless --keep):
1. produce: --messages records of --size bytes as fast as librdkafka batches them;
2. consume: read them back from the start (a plain assign, no group);
3. latency: --latency-samples round trips, one at a time, as Kafka's EndToEndLatency tool does:
   send one record with linger 0, wait until the consumer sees it. Sequential round trips
   measure the broker's wake-up on append rather than queueing behind the bench's own load.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from klamm.cli._common import (
    CliError,
    add_cluster_command,
    admin_client,
    client_config,
    command,
    console,
    describe_error,
    non_negative_int,
    positive_int,
    print_json,
    print_table,
    rd,
    table,
    wait,
)

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
ACKS = {"0": "0", "1": "1", "all": "all", "-1": "all"}
MB = 1_000_000  # throughput in decimal megabytes, as Kafka's perf tools report it


def register(subparsers: Any) -> None:
    parser = add_cluster_command(
        subparsers,
        "bench",
        main,
        help="produce/consume throughput and end-to-end latency",
        description="Benchmark produce and consume throughput and end-to-end latency.",
    )
    parser.add_argument(
        "--embedded", action="store_true", help="start a fresh klamm broker for the run (not -b)"
    )
    parser.add_argument("--topic", default=None, help="topic to use (default: a fresh one)")
    parser.add_argument("--keep", action="store_true", help="keep the fresh topic afterwards")
    parser.add_argument("--messages", type=positive_int, default=100_000, metavar="N")
    parser.add_argument("--size", type=positive_int, default=100, metavar="BYTES")
    parser.add_argument("--partitions", type=positive_int, default=1, metavar="N")
    parser.add_argument("--acks", choices=sorted(ACKS), default="all")
    parser.add_argument("-z", dest="codec", choices=CODECS, default="none", help="compression")
    parser.add_argument("--latency-samples", type=non_negative_int, default=500, metavar="N")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..1)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@contextmanager
def _cluster(args: argparse.Namespace) -> Iterator[None]:
    """With --embedded, point args at a fresh broker for the duration of the run."""
    if not args.embedded:
        yield
        return
    # The only place the CLI touches klamm's broker: a child process, so the broker's event loop
    # and the bench's librdkafka callbacks do not share one GIL and skew each other's numbers.
    from klamm.testing import EmbeddedBroker

    with EmbeddedBroker(mode="subprocess") as broker:
        args.bootstrap_server = broker.bootstrap
        yield


def _progress(args: argparse.Namespace) -> Any:
    err = console(stderr=True)
    if args.json or not err.is_terminal:
        return nullcontext(None)
    return Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


class _Ticker:
    """Progress updates at most every 1/20th of the work: rich redraws cost more than a send."""

    def __init__(self, progress: Progress | None, description: str, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task(description, total=total) if progress else None
        self.step = max(1, total // 20)
        self.shown = 0

    def update(self, done: int, *, final: bool = False) -> None:
        if self.progress is None or self.task is None:
            return
        if final or done - self.shown >= self.step:
            self.progress.update(self.task, completed=done)
            self.shown = done


@command("bench")
def main(args: argparse.Namespace) -> int:
    with _cluster(args):
        admin = admin_client(args)
        topic = args.topic or f"klamm-bench-{uuid.uuid4().hex[:8]}"
        created = args.topic is None
        if created:
            new = rd.NewTopic(topic, num_partitions=args.partitions, replication_factor=-1)
            try:
                wait(admin.create_topics([new], request_timeout=args.timeout)[topic], args.timeout)
            except KafkaException as exc:
                raise CliError(f"cannot create topic {topic!r}: {describe_error(exc)}") from None
        try:
            results = _run(args, topic)
        finally:
            if created and not args.keep:
                admin.delete_topics([topic], request_timeout=args.timeout)
    _report(args, topic, results)
    return 0


def _run(args: argparse.Namespace, topic: str) -> dict[str, Any]:
    consumer = Consumer(
        client_config(
            args,
            **{"group.id": f"klamm-bench-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False},
        )
    )
    try:
        meta = consumer.list_topics(topic, timeout=args.timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise CliError(f"unknown topic {topic!r}")
        partitions = sorted(meta.partitions)
        # Where this run's records start: an existing --topic may already hold data.
        starts = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), args.timeout)[1]
            for p in partitions
        }
        with _progress(args) as progress:
            produced = _produce(args, topic, progress)
            consumed = _consume(args, consumer, topic, starts, progress)
            latencies = _latency(args, consumer, topic, progress)
    finally:
        consumer.close()
    return {"produce": produced, "consume": consumed, "latency": latencies}


def _producer(args: argparse.Namespace, linger_ms: int) -> Producer:
    return Producer(
        client_config(
            args,
            **{
                "acks": ACKS[args.acks],
                "compression.type": args.codec,
                "linger.ms": linger_ms,
                "message.timeout.ms": max(1000, int(args.timeout * 1000)),
            },
        )
    )


def _produce(args: argparse.Namespace, topic: str, progress: Progress | None) -> dict[str, Any]:
    producer = _producer(args, linger_ms=5)
    # Incompressible payload: compression ratios would otherwise flatter every codec.
    payload = os.urandom(args.size)
    ticker = _Ticker(progress, "produce", args.messages)
    delivered = [0]
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered[0] += 1

    started = time.perf_counter()
    for _ in range(args.messages):
        while True:
            try:
                producer.produce(topic, payload, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)  # local queue full: let deliveries drain
        producer.poll(0)
        ticker.update(delivered[0])
        if errors:
            break
    remaining = producer.flush(args.timeout)
    elapsed = time.perf_counter() - started
    ticker.update(delivered[0], final=True)
    if errors:
        raise CliError(f"produce failed: {describe_error(errors[0])}")
    if remaining:
        raise CliError(f"{remaining} messages not acknowledged within {args.timeout:g}s")
    return _throughput(args.messages, args.size, elapsed)


def _consume(
    args: argparse.Namespace,
    consumer: Consumer,
    topic: str,
    starts: dict[int, int],
    progress: Progress | None,
) -> dict[str, Any]:
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
    ticker = _Ticker(progress, "consume", args.messages)
    seen = 0
    started = time.perf_counter()
    idle_since = started
    while seen < args.messages:
        batch = consumer.consume(num_messages=10_000, timeout=0.2)
        now = time.perf_counter()
        if not batch:
            if now - idle_since > args.timeout:
                raise CliError(f"consume stalled at {seen} of {args.messages} messages")
            continue
        idle_since = now
        for msg in batch:
            err = msg.error()
            if err is None:
                seen += 1
            elif err.code() != KafkaError._PARTITION_EOF:
                raise CliError(f"consume failed: {describe_error(err)}")
        ticker.update(seen)
    elapsed = time.perf_counter() - started
    ticker.update(seen, final=True)
    consumer.unassign()
    return _throughput(seen, args.size, elapsed)


def _latency(
    args: argparse.Namespace, consumer: Consumer, topic: str, progress: Progress | None
) -> list[float]:
    if args.latency_samples == 0:
        return []
    producer = _producer(args, linger_ms=0)
    partition = TopicPartition(topic, 0)
    # An explicit offset, not OFFSET_END: "end" resolves asynchronously and could land after the
    # first probe, which would then never arrive.
    end = consumer.get_watermark_offsets(partition, args.timeout)[1]
    consumer.assign([TopicPartition(topic, 0, end)])
    ticker = _Ticker(progress, "latency", args.latency_samples)
    payload = os.urandom(args.size)
    samples: list[float] = []
    for i in range(args.latency_samples):
        sent = time.perf_counter()
        producer.produce(topic, payload, partition=0)
        producer.poll(0)
        while True:
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                break
            producer.poll(0)
            if time.perf_counter() - sent > args.timeout:
                raise CliError(f"latency probe {i} not consumed within {args.timeout:g}s")
        samples.append((time.perf_counter() - sent) * 1000)
        ticker.update(i + 1)
    ticker.update(len(samples), final=True)
    producer.flush(args.timeout)
    return sorted(samples)


def _throughput(messages: int, size: int, seconds: float) -> dict[str, Any]:
    seconds = max(seconds, 1e-9)
    return {
        "messages": messages,
        "seconds": round(seconds, 4),
        "msg_per_s": round(messages / seconds, 1),
        "mb_per_s": round(messages * size / MB / seconds, 3),
    }


def _report(args: argparse.Namespace, topic: str, results: dict[str, Any]) -> None:
    latencies: list[float] = results["latency"]
    latency = {
        "samples": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 3) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 3) if latencies else None,
        "max_ms": round(latencies[-1], 3) if latencies else None,
    }
    if args.json:
        print_json(
            {
                "bootstrap": "embedded" if args.embedded else args.bootstrap_server,
                "topic": topic,
                "size": args.size,
                "acks": ACKS[args.acks],
                "codec": args.codec,
                "partitions": args.partitions,
                "produce": results["produce"],
                "consume": results["consume"],
                "latency": latency,
            }
        )
        return
    target = "embedded klamm broker" if args.embedded else args.bootstrap_server
    title = (
        f"klamm bench: {args.messages} x {args.size} B, acks={ACKS[args.acks]}, "
        f"codec={args.codec}, {args.partitions} partition(s) on {target}"
    )
    out = table(
        "phase", "messages", "seconds", "msg/s", "MB/s", "p50 ms", "p99 ms", "max ms",
        title=title, numeric=("messages", "seconds", "msg/s", "MB/s", "p50 ms", "p99 ms", "max ms"),
    )  # fmt: skip
    for phase in ("produce", "consume"):
        r = results[phase]
        out.add_row(phase, str(r["messages"]), f"{r['seconds']:.2f}", f"{r['msg_per_s']:,.0f}",
                    f"{r['mb_per_s']:.2f}", "", "", "")  # fmt: skip
    if latencies:
        out.add_row("latency", str(latency["samples"]), "", "", "",
                    f"{latency['p50_ms']:.2f}", f"{latency['p99_ms']:.2f}",
                    f"{latency['max_ms']:.2f}")  # fmt: skip
    print_table(console(), out)
