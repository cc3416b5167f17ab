"""KafkaJS 2.2.4 (node scripts in js/core_*.js) against klamm.

Produce/consume, codecs and offsets read partitions with an assign()-style reader built on
KafkaJS's own Fetch path (core_lib.js); seek/replay and pause/resume need KafkaJS's consumer, which
is group-based.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.interop_helpers import (
    CODECS,
    COMPRESSIBLE_RECORDS,
    RECORDS,
    NodeRunner,
    Record,
    assert_compressed,
    assert_same_records,
    records_from_json,
    records_json,
)

pytestmark = pytest.mark.timeout(90)


def test_keyed_produce_consume_byte_exact(
    node: NodeRunner, bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(1)
    # Several sends, so the records span several batches.
    result = node(
        "core_roundtrip.js",
        {"bootstrap": bootstrap, "topic": topic, "records": records_json(), "batches": 4},
    )
    msgs = result["messages"]
    assert [m["offset"] for m in msgs] == list(range(len(RECORDS)))
    assert_same_records(records_from_json(msgs))


def test_produce_auto_creates_and_confluent_reads_it(
    node: NodeRunner, bootstrap: str, unique: str
) -> None:
    """What KafkaJS writes is what another client reads (headers, nulls, byte-exact)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = f"kjs-auto-{unique}"
    node(
        "core_produce.js",
        {
            "bootstrap": bootstrap,
            "topic": topic,
            "records": [dict(r, partition=0) for r in records_json()],
        },
    )
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "kjs-check",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    got: list[Record] = []
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 15
        while len(got) < len(RECORDS) and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                got.append((msg.key(), msg.value(), list(msg.headers() or [])))
    finally:
        c.close()
    assert_same_records(got)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trip(
    node: NodeRunner,
    bootstrap: str,
    data_dir: Path,
    topic_factory: Callable[..., str],
    codec: str,
) -> None:
    topic = topic_factory(1)
    result = node(
        "core_roundtrip.js",
        {
            "bootstrap": bootstrap,
            "topic": topic,
            "records": records_json(COMPRESSIBLE_RECORDS),
            "compression": codec,
            "batches": 3,
        },
    )
    assert_same_records(records_from_json(result["messages"]), COMPRESSIBLE_RECORDS)
    assert_compressed(data_dir, topic, codec)


@pytest.mark.parametrize("codec", CODECS)
def test_reads_librdkafka_compressed_batches(
    node: NodeRunner, bootstrap: str, topic_factory: Callable[..., str], codec: str
) -> None:
    """KafkaJS's codecs decode what librdkafka compressed (the broker hands batches through)."""
    from confluent_kafka import Producer

    topic = topic_factory(1)
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20})
    values = [(f"payload {i} " * 30).encode() for i in range(200)]
    for v in values:
        p.produce(topic, value=v, partition=0)
    assert p.flush(15) == 0
    result = node(
        "core_fetch.js", {"bootstrap": bootstrap, "topic": topic, "offset": 0, "count": 200}
    )
    assert [bytes.fromhex(m["value"]) for m in result["messages"]] == values


def test_admin_create_describe_delete(node: NodeRunner, bootstrap: str, unique: str) -> None:
    name = f"admin-kjs-{unique}"
    out: dict[str, Any] = node("core_admin.js", {"bootstrap": bootstrap, "topic": name})
    assert out["created"] is True
    assert out["duplicate"] is False  # KafkaJS's answer to TOPIC_ALREADY_EXISTS
    assert out["listed"] is True
    assert out["partitions"] == [0, 1, 2]
    assert out["cluster"]["clusterId"] and out["cluster"]["brokers"] == 1
    assert out["configs"]["retention.ms"] == {"value": "123456", "isDefault": False}
    assert out["configs"]["max.message.bytes"]["value"] == "1048588"
    assert out["partitionsAfter"] == 5
    assert out["listedAfterDelete"] is False


def test_offsets_earliest_latest_by_timestamp(
    node: NodeRunner, bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(1)
    base = int(time.time() * 1000) - 3_600_000
    records = [
        {
            "key": None,
            "value": f"m{i}".encode().hex(),
            "headers": [],
            "timestamp": base + i * 1000,
            "partition": 0,
        }
        for i in range(10)
    ]
    node("core_produce.js", {"bootstrap": bootstrap, "topic": topic, "records": records})
    out = node(
        "core_offsets.js",
        {
            "bootstrap": bootstrap,
            "topic": topic,
            "timestamps": [base - 1, base + 4500, base + 3000, base + 60_000],
        },
    )
    [part] = out["offsets"]
    assert (part["partition"], part["low"], part["high"], part["offset"]) == (0, "0", "10", "10")
    by_ts = {int(k): v for k, v in out["byTimestamp"].items()}
    assert by_ts[base - 1] == 0
    assert by_ts[base + 4500] == 5
    assert by_ts[base + 3000] == 3
    # No record at or after the timestamp: the broker answers -1, which KafkaJS replaces with the
    # latest offset.
    assert by_ts[base + 60_000] == 10

    # Start reading at the offset found by timestamp.
    msgs = node("core_fetch.js", {"bootstrap": bootstrap, "topic": topic, "offset": 5, "count": 5})[
        "messages"
    ]
    assert [m["offset"] for m in msgs] == [5, 6, 7, 8, 9]
    assert [m["timestamp"] for m in msgs] == [base + i * 1000 for i in range(5, 10)]


def test_seek_and_replay(node: NodeRunner, bootstrap: str, unique: str) -> None:
    out = node(
        "core_consumer.js",
        {
            "bootstrap": bootstrap,
            "topic": f"kjs-seek-{unique}",
            "group": f"g-{unique}",
            "mode": "seek",
        },
    )
    passes = {e["pass"]: e["offsets"] for e in out["events"]}
    assert passes["first"] == list(range(20))
    assert passes["seek5"] == list(range(5, 20))
    assert passes["replay"] == list(range(20))


def test_pause_resume(node: NodeRunner, bootstrap: str, unique: str) -> None:
    out = node(
        "core_consumer.js",
        {
            "bootstrap": bootstrap,
            "topic": f"kjs-pause-{unique}",
            "group": f"g-{unique}",
            "mode": "pause",
        },
    )
    phases = {e["phase"]: e["messages"] for e in out["events"]}
    assert len(phases["start"]) == 15
    assert sorted({m["partition"] for m in phases["paused"]}) == [0, 2]
    assert len(phases["paused"]) == 10, "a paused partition delivered messages"
    resumed = phases["resumed"]
    assert {m["partition"] for m in resumed} == {1}
    assert [m["value"] for m in resumed] == [f"p1-{i}" for i in range(5, 10)]
