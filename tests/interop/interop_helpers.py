"""Helpers shared by the interop tests: the canonical record sets, topic setup and the runner of
the KafkaJS scripts (the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).parent / "js"
IN_CI = os.environ.get("CI", "").lower() == "true"

CODECS = ["gzip", "snappy", "lz4", "zstd"]
CODEC_ID = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

# The canonical record set of the keyed produce/consume scenario: keys, values and headers that
# clients commonly get wrong (null vs empty, binary, repeated header keys, non-ASCII header keys).
# Each entry is (key, value, headers); headers are (str, bytes) pairs and their order matters.
Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]

RECORDS: list[Record] = [
    (b"k0", b"v0", [("h1", b"x")]),
    (b"k1", None, []),  # null value: a tombstone
    (b"k2", b"", [("empty", b"")]),  # empty value and an empty header value
    (None, b"null key", []),
    (b"", b"empty key", [("dup", b"1"), ("dup", b"2"), ("other", b"3")]),
    (b"\x00\xff" * 8, bytes(range(256)), [("bin", bytes(range(255, -1, -1)))]),
    (None, None, []),
    (b"k-utf8", "grüße €".encode(), [("schlüssel", "wert ✓".encode())]),
] + [
    (f"key-{i % 3}".encode(), f"value-{i:04d}".encode(), [("seq", str(i).encode())])
    for i in range(100)
]

# The record set of the codec round trips: 300 records whose values repeat a phrase, so there is
# something to compress.
COMPRESSIBLE_RECORDS: list[Record] = [
    (f"k{i}".encode(), (f"compressible payload {i} " * 20).encode(), [("i", str(i).encode())])
    for i in range(300)
]


def records_json(records: list[Record] = RECORDS) -> list[dict[str, Any]]:
    """The record set as JSON for the node scripts (bytes as hex, null as null)."""
    return [
        {
            "key": None if k is None else k.hex(),
            "value": None if v is None else v.hex(),
            "headers": [[hk, hv.hex()] for hk, hv in h],
        }
        for k, v, h in records
    ]


def records_from_json(rows: list[dict[str, Any]]) -> list[Record]:
    return [
        (
            None if r["key"] is None else bytes.fromhex(r["key"]),
            None if r["value"] is None else bytes.fromhex(r["value"]),
            [(hk, bytes.fromhex(hv)) for hk, hv in r["headers"]],
        )
        for r in rows
    ]


def assert_same_records(got: list[Record], expected: list[Record] = RECORDS) -> None:
    """Byte-exact and in order; a readable first difference instead of a 100-line diff."""
    for i, (g, e) in enumerate(zip(got, expected, strict=False)):
        assert g == e, f"record {i} differs: got {g!r}, expected {e!r}"
    assert len(got) == len(expected), f"got {len(got)} records, expected {len(expected)}"


def batch_codecs(data_dir: Path, topic: str, partition: int = 0) -> list[int]:
    """Compression codec id of every batch klamm stored for the partition (its segment files).

    Shows that a client really compressed (librdkafka 2.0.2 silently sends uncompressed batches
    when the broker's ApiVersions lacks Produce v0)."""
    dirs = [p for p in data_dir.rglob(f"{topic}-{partition}") if p.is_dir()]
    assert dirs, f"no partition directory for {topic}-{partition} under {data_dir}"
    codecs: list[int] = []
    for log in sorted(dirs[0].glob("*.log")):
        data = log.read_bytes()
        pos = 0
        while pos + 23 <= len(data):
            (length,) = struct.unpack_from(">i", data, pos + 8)
            (attributes,) = struct.unpack_from(">h", data, pos + 21)
            if not attributes & 0x20:  # skip control batches
                codecs.append(attributes & 0x07)
            pos += 12 + length
    return codecs


def assert_compressed(data_dir: Path, topic: str, codec: str, partition: int = 0) -> None:
    codecs = batch_codecs(data_dir, topic, partition)
    assert codecs, "no batch stored"
    assert set(codecs) == {CODEC_ID[codec]}, f"stored batches have codecs {codecs}, want {codec}"


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


def missing_tool(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (required under CI=true; .ci/run installs it)")
    pytest.skip(message)


class NodeRunner:
    """Runs `js/<script>` with a JSON object on stdin; the script prints one JSON line (result)."""

    def __init__(self, node: str) -> None:
        self.node = node

    def __call__(self, script: str, args: dict[str, Any], timeout: float = 60.0) -> Any:
        proc = subprocess.run(
            [self.node, str(JS_DIR / script)],
            input=json.dumps(args),
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
                f"stderr:\n{proc.stderr[-4000:]}"
            )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        assert lines, f"{script} printed no JSON result; stderr:\n{proc.stderr[-4000:]}"
        return json.loads(lines[-1])


def create_topic(bootstrap: str, name: str, partitions: int = 1, **configs: str) -> str:
    """Create a topic through confluent's AdminClient (setup for scenarios of other clients)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1, config=configs)], operation_timeout=10, request_timeout=10
    )
    futures[name].result(timeout=15)
    return name


def throwaway_group_consumer(bootstrap: str, topic: str, extra: dict[str, Any]) -> Any:
    """A confluent-kafka consumer in a new group of its own, subscribed to `topic` and reading it
    from the earliest offset; it commits nothing on its own. `extra` adds librdkafka settings."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **extra,
        }
    )
    consumer.subscribe([topic])
    return consumer
