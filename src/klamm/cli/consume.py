"""`klamm consume TOPIC`: print messages, like `kcat -C`.

    klamm consume orders -o beginning -e                  # every message, then exit
    klamm consume orders -o -10 -f '%p/%o %k=%s\\n'        # the last 10 of each partition
    klamm consume orders -g billing                       # as a member of consumer group billing

Without -g the consumer assigns partitions itself and commits nothing (like kcat's simple mode).
With -g it joins the group, gets partitions from the group's assignor and commits as it goes.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_STORED,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from klamm.cli._common import (
    CliError,
    ErrorReporter,
    add_connection_args,
    client_config,
    command,
    describe_error,
    probe,
    require_topic,
)

# librdkafka's RD_KAFKA_OFFSET_TAIL(n): "n messages before the end" is encoded as -2000 - n.
_OFFSET_TAIL_BASE = -2000
# How long one poll waits: short enough that Ctrl-C and -e react promptly.
POLL_SECONDS = 0.2

DEFAULT_FORMAT = "%s\\n"
_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", "0": b"\0"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "consume",
        help="print messages from a topic",
        description="Print messages from a topic (like kcat -C).",
    )
    parser.add_argument("topic")
    parser.add_argument(
        "-o",
        dest="offset",
        default="end",
        metavar="beginning|end|stored|N|-N",
        help="where to start: N absolute, -N that many before the end (default end)",
    )
    parser.add_argument(
        "-p", dest="partitions", type=int, action="append", default=None,
        metavar="PARTITION", help="only this partition (repeatable; not with -g)",
    )  # fmt: skip
    parser.add_argument("-c", dest="count", type=int, default=None, help="exit after COUNT")
    parser.add_argument(
        "-e", dest="exit_at_end", action="store_true", help="exit at the end of every partition"
    )
    parser.add_argument("-g", dest="group", default=None, help="consume as this consumer group")
    parser.add_argument(
        "-f",
        dest="format",
        default=DEFAULT_FORMAT,
        metavar="FORMAT",
        help="%%t topic %%p partition %%o offset %%k key %%s value %%K/%%S their lengths "
        "(-1 when null) %%T timestamp (ms) %%h headers; \\n \\t escapes (default '%%s\\n')",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per message: topic, partition, offset, timestamp, key, value and "
        "headers, an ordered list of [name, value] pairs. A key, value or header value is a "
        'string when it is UTF-8 text, null when null, and {"base64": "..."} otherwise',
    )
    add_connection_args(parser)
    parser.set_defaults(func=main)


# --- the -f format ---------------------------------------------------------------------------

Part = Callable[[Message], bytes]


def compile_format(fmt: str) -> list[Part]:
    """Turn a kcat-style format into a list of functions, each rendering one piece."""

    def literal(data: bytes) -> Part:
        return lambda _msg: data

    fields: dict[str, Part] = {
        "s": lambda m: m.value() or b"",
        "k": lambda m: m.key() or b"",
        "S": lambda m: _length(m.value()),
        "K": lambda m: _length(m.key()),
        "t": lambda m: (m.topic() or "").encode(),
        "p": lambda m: str(m.partition()).encode(),
        "o": lambda m: str(m.offset()).encode(),
        "T": lambda m: str(m.timestamp()[1]).encode(),
        "h": _headers,
        "%": lambda m: b"%",
    }
    parts: list[Part] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char in "%\\" and i + 1 < len(fmt):
            token = fmt[i + 1]
            if char == "%" and token in fields:
                parts.append(fields[token])
            elif char == "\\" and token in _ESCAPES:
                parts.append(literal(_ESCAPES[token]))
            else:
                raise CliError(f"unknown format token {char}{token} in {fmt!r}", 2)
            i += 2
        else:
            parts.append(literal(char.encode()))
            i += 1
    return parts


def _header_pairs(msg: Message) -> list[tuple[str, bytes | None]]:
    pairs: list[tuple[str, bytes | None]] = []
    headers: Any = msg.headers() or []  # list of (name, value); the stubs are looser
    for name, value in headers:
        pairs.append((str(name), value if isinstance(value, bytes | None) else value.encode()))
    return pairs


def _length(data: bytes | None) -> bytes:
    return b"-1" if data is None else str(len(data)).encode()  # kcat: -1 for null


def _headers(msg: Message) -> bytes:
    return b",".join(name.encode() + b"=" + (value or b"") for name, value in _header_pairs(msg))


def _json_bytes(value: bytes | None) -> str | dict[str, str] | None:
    """A key, value or header value in --json output. Text stays readable; other bytes become
    {"base64": ...}, which no string can be mistaken for (a backslash escape could)."""
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def message_json(msg: Message) -> str:
    return json.dumps(
        {
            "topic": msg.topic(),
            "partition": msg.partition(),
            "offset": msg.offset(),
            "timestamp": msg.timestamp()[1],
            "key": _json_bytes(msg.key()),
            "value": _json_bytes(msg.value()),
            # Pairs in order, as kcat -J: header names may repeat.
            "headers": [[name, _json_bytes(value)] for name, value in _header_pairs(msg)],
        }
    )


# --- where to start --------------------------------------------------------------------------


def start_offset(spec: str) -> int:
    """The librdkafka logical or absolute offset for an -o argument."""
    named = {"beginning": OFFSET_BEGINNING, "end": OFFSET_END, "stored": OFFSET_STORED}
    if spec in named:
        return named[spec]
    try:
        number = int(spec)
    except ValueError:
        raise CliError(f"bad -o {spec!r}: expected beginning, end, stored, N or -N", 2) from None
    return number if number >= 0 else _OFFSET_TAIL_BASE + number


# --- the command -----------------------------------------------------------------------------


@command("consume")
def main(args: argparse.Namespace) -> int:
    parts = None if args.json else compile_format(args.format)
    offset = start_offset(args.offset)
    if args.group is not None and args.partitions:
        raise CliError("-p cannot be used with -g: the group assigns partitions", 2)
    if args.group is not None and args.offset not in ("beginning", "end", "stored"):
        raise CliError("with -g, -o must be beginning, end or stored", 2)
    if args.count is not None and args.count < 1:
        raise CliError("-c must be at least 1", 2)
    probe(args.bootstrap_server, args.timeout)

    reset = "earliest" if args.offset == "beginning" else "latest"
    errors = ErrorReporter("consume")
    consumer = Consumer(
        client_config(
            args,
            **{
                "error_cb": errors,
                # Simple mode never joins or commits, so the group id only satisfies librdkafka.
                "group.id": args.group or f"klamm-cli-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": args.group is not None,
                "auto.offset.reset": reset,
                "enable.partition.eof": args.exit_at_end,
            },
        )
    )
    try:
        meta = require_topic(consumer, args.topic, args.timeout)
        assigned: set[int] = set()
        if args.group is None:
            wanted = sorted(args.partitions or meta.partitions)
            missing = [p for p in wanted if p not in meta.partitions]
            if missing:
                raise CliError(f"topic {args.topic!r} has no partition {missing[0]}")
            consumer.assign([TopicPartition(args.topic, p, offset) for p in wanted])
            assigned.update(wanted)
        else:
            _subscribe(consumer, args.topic, assigned)
        return _loop(consumer, args, parts, assigned, errors)
    finally:
        consumer.close()


def _subscribe(consumer: Consumer, topic: str, assigned: set[int]) -> None:
    def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assigned.update(p.partition for p in partitions)

    def on_revoke(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assigned.difference_update(p.partition for p in partitions)

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)


def _loop(
    consumer: Consumer,
    args: argparse.Namespace,
    parts: list[Part] | None,
    assigned: set[int],
    errors: ErrorReporter,
) -> int:
    out = sys.stdout.buffer
    sys.stdout.flush()  # anything written as text so far goes before our bytes
    at_end: set[int] = set()
    seen = 0
    # With -e, a group that never assigns anything would otherwise wait forever.
    assign_deadline = time.monotonic() + args.timeout
    while True:
        msg = consumer.poll(POLL_SECONDS)
        if msg is None:
            if args.exit_at_end and not assigned and time.monotonic() > assign_deadline:
                raise CliError(f"no partitions assigned within {args.timeout:g}s")
            continue
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition() or 0)
                if args.exit_at_end and assigned and assigned <= at_end:
                    break
                continue
            if err.fatal() or err.code() in (
                KafkaError.UNKNOWN_TOPIC_OR_PART,
                KafkaError.TOPIC_AUTHORIZATION_FAILED,
                KafkaError.GROUP_AUTHORIZATION_FAILED,
            ):
                raise CliError(describe_error(err))
            errors(err)
            continue
        errors.recovered()
        at_end.discard(msg.partition() or 0)
        if parts is None:
            out.write(message_json(msg).encode() + b"\n")
        else:
            out.write(b"".join(part(msg) for part in parts))
        out.flush()
        seen += 1
        if args.count is not None and seen >= args.count:
            break
    return 0
