"""`klamm produce TOPIC`: one message per stdin line, like `kcat -P`.

    echo 'hello' | klamm produce orders
    printf 'k1:v1\\nk2:v2\\n' | klamm produce orders -K : -H source=cli -z zstd --acks all

Prints a summary once every message is acknowledged (or failed).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, Message, Producer

from klamm.cli._common import (
    CliError,
    add_cluster_command,
    client_config,
    command,
    console,
    describe_error,
    key_value,
    print_json,
    probe,
    require_topic,
)

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
ACKS = {"0": "0", "1": "1", "all": "all", "-1": "all"}


def register(subparsers: Any) -> None:
    parser = add_cluster_command(
        subparsers,
        "produce",
        main,
        help="produce stdin lines to a topic",
        description="Produce one message per non-empty stdin line (like kcat -P).",
    )
    parser.add_argument("topic")
    parser.add_argument(
        "-K",
        dest="key_separator",
        default=None,
        metavar="SEP",
        help="split each line at the first SEP into key and value",
    )
    parser.add_argument(
        "-H",
        dest="headers",
        type=key_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="header on every message (repeatable)",
    )
    parser.add_argument(
        "-p", dest="partition", type=_partition, default=None, metavar="PARTITION",
        help="partition (default, or -1 as in kcat: the partitioner)",
    )  # fmt: skip
    parser.add_argument("-z", dest="codec", choices=CODECS, default="none", help="compression")
    parser.add_argument(
        "--acks", choices=sorted(ACKS), default="all", help="acks required (default all)"
    )


def _partition(value: str) -> int | None:
    """-p: a partition number, or -1 for "let the partitioner choose" (None)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a partition number, got {value!r}") from None
    if number < -1:
        raise argparse.ArgumentTypeError(f"expected a partition number or -1, got {value!r}")
    return None if number == -1 else number


def read_lines(stream: BinaryIO) -> Any:
    """Each non-empty line without its newline; a final line without one still counts. Empty
    lines are skipped, as kcat -P does: a blank line is not a message."""
    for line in stream:
        line = line[:-1] if line.endswith(b"\n") else line
        if line:
            yield line


@command("produce")
def main(args: argparse.Namespace) -> int:
    if args.key_separator == "":
        raise CliError("-K needs a non-empty separator", 2)
    probe(args.bootstrap_server, args.timeout)
    conf = client_config(
        args,
        **{
            "acks": ACKS[args.acks],
            "compression.type": args.codec,
            "linger.ms": 5,
            # A message not delivered within --timeout is reported, not retried forever.
            "message.timeout.ms": max(1000, int(args.timeout * 1000)),
        },
    )
    producer = Producer(conf)
    meta = require_topic(producer, args.topic, args.timeout)
    if args.partition is not None and args.partition not in meta.partitions:
        raise CliError(
            f"topic {args.topic!r} has no partition {args.partition} "
            f"(partitions 0-{len(meta.partitions) - 1})"
        )

    headers = [(name, value.encode()) for name, value in args.headers] or None
    separator = args.key_separator.encode() if args.key_separator else None
    per_partition: Counter[int] = Counter()
    errors: list[KafkaError] = []
    sent = total_bytes = 0

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            per_partition[msg.partition() or 0] += 1

    started = time.monotonic()
    stdin: BinaryIO = sys.stdin.buffer
    for line in read_lines(stdin):
        key: bytes | None = None
        value = line
        if separator is not None:
            head, found, tail = line.partition(separator)
            if found:
                key, value = head, tail
        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": on_delivery}
        if headers:
            kwargs["headers"] = headers
        if args.partition is not None:
            kwargs["partition"] = args.partition
        _produce(producer, args.topic, kwargs)
        sent += 1
        total_bytes += len(value) + (len(key) if key else 0)
    remaining = producer.flush(args.timeout)
    elapsed = time.monotonic() - started

    delivered = sum(per_partition.values())
    summary = {
        "topic": args.topic,
        "messages": delivered,
        "bytes": total_bytes,
        "partitions": dict(sorted(per_partition.items())),
        "failed": len(errors) + remaining,
        "seconds": round(elapsed, 3),
    }
    if args.json:
        print_json(summary)
    else:
        spread = ", ".join(f"{p}: {n}" for p, n in sorted(per_partition.items()))
        console().print(
            f"produced {delivered} message{'s' if delivered != 1 else ''} ({total_bytes} bytes) "
            f"to {args.topic} [{spread}] in {elapsed:.2f}s"
        )
    if errors:
        raise CliError(f"{len(errors)} of {sent} messages failed: {describe_error(errors[0])}")
    if remaining:
        raise CliError(f"{remaining} of {sent} messages not acknowledged within {args.timeout:g}s")
    return 0


def _produce(producer: Producer, topic: str, kwargs: dict[str, Any]) -> None:
    while True:
        try:
            producer.produce(topic, **kwargs)
            producer.poll(0)
            return
        except BufferError:
            # The local queue is full (queue.buffering.max.messages): let deliveries drain.
            producer.poll(0.1)
