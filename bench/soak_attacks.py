"""The adversary of `bench/soak.py`: the attacks of issue 11, replayed over the raw wire.

Each attack is a plain function `(bootstrap, topics) -> str` that opens its own sockets, does
its damage within a few seconds and returns a one-word outcome for the report ("refused",
"closed", "answered", ...). A broker that is down or restarting makes an attack fail with an
`OSError`; the adversary counts that and moves on, so it never stops on its own.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from kio.serial import entity_writer

from klamm.protocol.build import build
from klamm.protocol.errors import ErrorCode
from klamm.protocol.messages import request_type
from klamm.protocol.record_batch import (
    HEADER_SIZE,
    Compression,
    Record,
    RecordBatch,
    build_batch,
    crc_of,
)
from tests.broker.wire import Wire

# A fixed, plausible timestamp: the soak never depends on wall-clock time in a batch.
TIMESTAMP_MS = 1_700_000_000_000


@dataclass(frozen=True)
class Topics:
    """The soak's topics that attacks aim at."""

    acked: str  # the victim's acks=all topic
    poison: str  # poison batches go here; it must stay consumable
    fanout: str  # many partitions: amplification and fsync fan-out


Attack = Callable[[str, Topics], str]


def _produce(wire: Wire, topic: str, partition: int, records: bytes, acks: int = -1) -> int:
    """Produce v9; the partition's error code (0 when acks=0, which has no answer)."""
    body = {
        "transactional_id": None, "acks": acks, "timeout": 5000,
        "topic_data": [{"name": topic,
                        "partition_data": [{"index": partition, "records": records}]}],
    }  # fmt: skip
    if acks == 0:
        _send_only(wire, 0, 9, **body)
        return 0
    response = wire.request(0, 9, **body)
    return int(response.responses[0].partition_responses[0].error_code)


def _send_only(wire: Wire, api_key: int, version: int, **fields: Any) -> None:
    """Send a request without reading its answer (acks=0, or a long poll left parked)."""
    cls = request_type(api_key, version)
    out = BytesIO()
    entity_writer(cls)(out, build(cls, **fields))
    wire.send_raw(wire.header(api_key, version) + out.getvalue())


def _one_record(value: bytes, **batch: object) -> bytes:
    return build_batch(
        RecordBatch(records=[Record(0, TIMESTAMP_MS, b"attack", value)], **batch)  # type: ignore[arg-type]
    )


def forged_producer_ids(bootstrap: str, topics: Topics) -> str:
    """Idempotent batches for producer ids nobody was given (finding 1): low ids the broker
    will hand out next, and a far one."""
    accepted = 0
    with Wire(bootstrap) as wire:
        for pid in [*range(0, 40), 10**9]:
            batch = _one_record(b"forged-%d" % pid, producer_id=pid, producer_epoch=0,
                                base_sequence=0)  # fmt: skip
            if _produce(wire, topics.acked, pid % 3, batch) == ErrorCode.none:
                accepted += 1
    return f"accepted {accepted}" if accepted else "refused"


def _with_records_region(batch: bytes, region: bytes, compression: Compression) -> bytes:
    """`batch` with its records replaced by `region` and the attributes' codec set, CRC fixed."""
    out = bytearray(batch[:HEADER_SIZE]) + region
    struct.pack_into(">i", out, 8, len(out) - 12)
    attributes = struct.unpack_from(">h", out, 21)[0] & ~0x7 | int(compression)
    struct.pack_into(">h", out, 21, attributes)
    struct.pack_into(">I", out, 17, crc_of(out, 0, len(out)))
    return bytes(out)


def poison_batches(bootstrap: str, topics: Topics) -> str:
    """Batches whose records do not decode (finding 12) and a 70-byte batch claiming 2^31-1
    offsets (finding 7). Each must be refused; the partition must stay consumable."""
    good = _one_record(b"good")
    negative_length = bytearray(good)
    negative_length[HEADER_SIZE] = 0x01  # zigzag varint -1: a record of length -1
    poisons = [
        _with_records_region(good, b"\x28\xb5\x2f\xfd" + b"\xff" * 40, Compression.ZSTD),
        _with_records_region(good, b"\x1f\x8b\x08\x00" + b"\xee" * 40, Compression.GZIP),
        _with_records_region(good, b"\xff\xff\xff\xff garbage", Compression.SNAPPY),
        _with_records_region(good, bytes(negative_length[HEADER_SIZE:]), Compression.NONE),
        build_batch(
            RecordBatch(records=[Record(0, TIMESTAMP_MS, b"k", b"v")], last_offset_delta=2**31 - 2)
        ),
    ]
    accepted = 0
    with Wire(bootstrap) as wire:
        for poison in poisons:
            if _produce(wire, topics.poison, 0, poison) == ErrorCode.none:
                accepted += 1
        _produce(wire, topics.poison, 0, good)
    return f"accepted {accepted}" if accepted else "refused"


def hostile_long_poll(bootstrap: str, topics: Topics) -> str:
    """One Fetch listing the victim's partition 300 times with min_bytes and max_wait at
    2^31-1 (findings 8 and 9), held open for two seconds while the victim produces."""
    partitions = [
        {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "log_start_offset": -1,
         "partition_max_bytes": 2**31 - 1}
        for _ in range(300)
    ]  # fmt: skip
    with Wire(bootstrap) as wire:
        _send_only(
            wire, 1, 11, replica_id=-1, max_wait=2**31 - 1, min_bytes=2**31 - 1,
            max_bytes=2**31 - 1, isolation_level=0, session_id=0, session_epoch=-1,
            topics=[{"topic": topics.acked, "partitions": partitions}],
            forgotten_topics_data=[], rack_id="",
        )  # fmt: skip
        time.sleep(2.0)
    return "sent"


def metadata_amplification(bootstrap: str, topics: Topics) -> str:
    """Metadata naming the many-partition topic 500 times (finding 10)."""
    with Wire(bootstrap, timeout=10) as wire:
        response = wire.request(
            3, 9, topics=[{"name": topics.fanout}] * 500, allow_auto_topic_creation=False,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )  # fmt: skip
        return f"answered {len(response.topics)} topics"


def describe_groups_amplification(bootstrap: str, topics: Topics) -> str:
    """DescribeGroups with 200,000 empty group ids (finding 10)."""
    with Wire(bootstrap, timeout=10) as wire:
        response = wire.request(15, 5, groups=[""] * 200_000, include_authorized_operations=False)
        return f"answered {len(response.groups)} groups"


def negative_array_count(bootstrap: str, topics: Topics) -> str:
    """DescribeGroups v0 whose non-nullable `groups` array claims -1 entries (finding 15)."""
    with Wire(bootstrap) as wire:
        wire.send_raw(wire.header(15, 0) + struct.pack(">i", -1))
        return "closed" if wire.is_closed() else "kept open"


def idle_connections(bootstrap: str, topics: Topics) -> str:
    """300 connections that never send a byte, held for three seconds (finding 13)."""
    host, port = bootstrap.rsplit(":", 1)
    socks: list[socket.socket] = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection((host, int(port)), timeout=2))
        time.sleep(3.0)
    finally:
        for sock in socks:
            sock.close()
    return f"held {len(socks)}"


def half_sent_frame(bootstrap: str, topics: Topics) -> str:
    """A frame header declaring 99 MiB followed by a trickle, then silence (finding 13)."""
    with Wire(bootstrap) as wire:
        wire.sock.sendall(struct.pack(">i", 99 * 1024 * 1024) + b"\0" * 1000)
        time.sleep(2.0)
        return "closed" if wire.is_closed() else "held"


def huge_create_topics(bootstrap: str, topics: Topics) -> str:
    """One CreateTopics asking for 3,000 partitions, deleted again (finding 11)."""
    name = f"soak-huge-{time.monotonic_ns()}"
    with Wire(bootstrap, timeout=60) as wire:
        created = wire.request(
            19, 4, timeout=30000, validate_only=False,
            topics=[{"name": name, "num_partitions": 3000, "replication_factor": 1,
                     "assignments": [], "configs": []}],
        )  # fmt: skip
        code = created.topics[0].error_code
        if code == ErrorCode.none:
            wire.request(20, 4, topic_names=[name], timeout=30000)
            return "created and deleted"
        return f"refused ({ErrorCode(code).name})"


def fsync_fanout(bootstrap: str, topics: Topics, partitions: int = 500) -> str:
    """acks=0 writes of one small batch to each of the fan-out topic's partitions, five rounds
    0.2 s apart (finding 14): the victim's acks=all must not wait behind them."""
    batch = _one_record(b"fanout")
    with Wire(bootstrap) as wire:
        for _ in range(5):
            for partition in range(partitions):
                _produce(wire, topics.fanout, partition, batch, acks=0)
            time.sleep(0.2)
    return "sent"


ATTACKS: list[Attack] = [
    forged_producer_ids,
    poison_batches,
    hostile_long_poll,
    metadata_amplification,
    describe_groups_amplification,
    negative_array_count,
    idle_connections,
    half_sent_frame,
    huge_create_topics,
    fsync_fanout,
]


def run_attack(attack: Attack, bootstrap: str, topics: Topics) -> str:
    """The attack's outcome, or why it could not be made (the broker restarting, say)."""
    try:
        return attack(bootstrap, topics)
    except (OSError, ConnectionError) as exc:
        return f"connection: {type(exc).__name__}"
    except Exception as exc:  # a garbled answer is an outcome to report, not a reason to stop
        with contextlib.suppress(Exception):
            return f"error: {type(exc).__name__}: {exc}"[:120]
        return "error"
