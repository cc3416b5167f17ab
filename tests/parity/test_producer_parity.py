"""Producer, transactions and admin, side by side with KafkaJS 2.2.4 (see harness.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from klamm import (
    Kafka,
    KafkaConnectionError,
    NonRetriableError,
    Partitioners,
    RetryPolicy,
    TopicError,
)
from klamm.testing import EmbeddedBroker
from tests.parity.harness import BROKER_SETTINGS, JS_DIR, NODE_MODULES, assert_parity

# The same retry policy on both sides: 2 retries from 100 ms (waits of 100 and 200 ms, jittered).
RETRY = {"retries": 2, "initialRetryTime": 100}
POLICY = RetryPolicy(retries=2, initial_retry_time_ms=100)
# A send "waited for the retries" when it failed after at least the shortest jittered waits and
# "within the bound" when it failed within the policy's budget plus librdkafka's once-a-second
# timeout scan and slack for a shared machine. The jitter compounds (KafkaJS's retrier draws each
# wait around the one before, as RetryPolicy.delays_ms does): the shortest draw is 80 ms, then
# 2 x 64 ms, 208 ms in all, not 300 ms less 20% (a KafkaJS run took 230 ms once and failed).
MIN_WAIT_MS = 200
MAX_WAIT_MS = POLICY.delivery_timeout_ms(1_000) + 5_000


def _gave_up(error: BaseException, elapsed_ms: float) -> dict[str, Any]:
    cause = getattr(error, "cause", None)
    kind = (
        "connection"
        if isinstance(cause, KafkaConnectionError)
        else "unknown_topic"
        if isinstance(cause, TopicError)
        else repr(cause)
    )
    return {
        "delivered": False,
        "name": f"KafkaJS{type(error).__name__}",
        "retriable": getattr(error, "retriable", None),
        "gave_up": isinstance(error, NonRetriableError),
        "cause": kind,
        "waited_for_the_retries": elapsed_ms >= MIN_WAIT_MS,
        "within_the_bound": elapsed_ms <= MAX_WAIT_MS,
    }


async def _observe(send: Any) -> dict[str, Any]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(send(), MAX_WAIT_MS / 1000 + 10)
        return {"delivered": True}
    except Exception as error:  # the record says what it was
        return _gave_up(error, (time.monotonic() - started) * 1000)


def _kafkajs_send_failures(broker: EmbeddedBroker, args: dict[str, Any]) -> Any:
    """Run js/producer_send_failures.js, stopping the broker when it says READY."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "kafkajs").is_dir():
        pytest.skip("node and KafkaJS are needed")
    marker = Path(tempfile.mkdtemp()) / "stopped"
    proc = subprocess.Popen(
        [node, str(JS_DIR / "producer_send_failures.js")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=JS_DIR,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES), "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({**args, "marker": str(marker)}))
    proc.stdin.close()
    proc.stdin = None  # closed: communicate() below must not flush it
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr and proc.stderr.read()
        broker.stop()
        marker.touch()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(marker.parent, ignore_errors=True)
    assert proc.returncode == 0, err[-3000:]
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


async def _klamm_send_failures(broker: EmbeddedBroker, missing: str, topic: str) -> Any:
    kafka = Kafka(brokers=[broker.bootstrap], retry=POLICY)
    record: dict[str, Any] = {}
    async with kafka.producer(allow_auto_topic_creation=False) as strict:
        record["missing_topic"] = await _observe(
            lambda: strict.send(topic=missing, messages=[{"value": b"x"}])
        )
    producer = kafka.producer()
    await producer.connect()
    try:
        record["before"] = await _observe(
            lambda: producer.send(topic=topic, messages=[{"value": b"a"}])
        )
        broker.stop()
        record["broker_down"] = await _observe(
            lambda: producer.send(topic=topic, messages=[{"value": b"b"}])
        )
    finally:
        await producer.disconnect(timeout_ms=0)
    return record


async def test_send_failures_match_kafkajs(names: Any, kafkajs: Any) -> None:
    """A missing topic (auto-creation off) and a broker gone down: both clients give up once
    the retry policy is spent, with a non-retriable error caused by what went wrong."""
    with EmbeddedBroker(**BROKER_SETTINGS) as broker:
        args = {
            "brokers": [broker.bootstrap],
            "retry": RETRY,
            "missing": names("missing"),
            "topic": names("t"),
            "min_wait_ms": MIN_WAIT_MS,
            "max_wait_ms": MAX_WAIT_MS,
        }
        js = await asyncio.to_thread(_kafkajs_send_failures, broker, args)
    with EmbeddedBroker(**BROKER_SETTINGS) as broker:
        py = await _klamm_send_failures(broker, names("missing"), names("t"))
    assert_parity(
        js,
        py,
        intended={
            "broker_down.name": "KafkaJS gives up on a broker that went down with "
            "KafkaJSNonRetriableError",
        },
    )


async def test_transactions_with_send_offsets_match_kafkajs(
    parity_broker: EmbeddedBroker, kafkajs: Any, names: Any
) -> None:
    js = kafkajs(
        "producer_txn_offsets.js",
        {
            "brokers": [parity_broker.bootstrap],
            "topic": names("t"),
            "group": names("g"),
            "txnId": names("tx"),
        },
    )
    topic, group = names("t"), names("g")
    kafka = Kafka(brokers=[parity_broker.bootstrap])
    record: dict[str, Any] = {}
    async with kafka.admin() as admin, kafka.producer(transactional_id=names("tx")) as producer:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 1}])

        async def offsets() -> list[dict[str, int]]:
            fetched = await admin.fetch_offsets(group_id=group, topics=[topic])
            return [
                {"partition": p["partition"], "offset": p["offset"]}
                for p in fetched[0]["partitions"]
            ]

        async with producer.transaction() as txn:
            await txn.send(topic=topic, messages=[{"value": v} for v in (b"a", b"b", b"c")])
            await txn.send_offsets(
                consumer_group_id=group,
                topics=[{"topic": topic, "partitions": [{"partition": 0, "offset": "3"}]}],
            )
        record["after_commit"] = await offsets()
        txn = await producer.transaction()
        await txn.send(topic=topic, messages=[{"value": b"dropped"}])
        await txn.send_offsets(
            consumer_group_id=group,
            topics=[{"topic": topic, "partitions": [{"partition": 0, "offset": "9"}]}],
        )
        await txn.abort()
        record["after_abort"] = await offsets()
        record["end_offsets"] = [o["high"] for o in await admin.fetch_topic_offsets(topic)]
    assert_parity(js, record)


KEYS = ["order-1", "order-2", "customer-42", "ü", "", "k" * 17, "a", "abcde", "12345678"]


async def test_partitioners_place_keys_as_kafkajs(
    parity_broker: EmbeddedBroker, kafkajs: Any, names: Any
) -> None:
    js = kafkajs(
        "producer_partitioners.js",
        {"brokers": [parity_broker.bootstrap], "topic": names("t"), "keys": KEYS},
    )
    topic = names("t")
    kafka = Kafka(brokers=[parity_broker.bootstrap])
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 7}])

    def last_partition() -> Any:
        return lambda *, partition_metadata, **_: partition_metadata[-1]["partition_id"]

    record: dict[str, Any] = {}
    for name, factory in (
        ("default", Partitioners.DefaultPartitioner),
        ("legacy", Partitioners.LegacyPartitioner),
        ("custom", last_partition),
    ):
        async with kafka.producer(create_partitioner=factory) as producer:
            placed = {}
            for key in KEYS:
                [meta] = await producer.send(topic=topic, messages=[{"key": key, "value": b"v"}])
                placed[key] = meta.partition
            record[name] = placed
    assert_parity(js, record)


async def test_admin_calls_match_kafkajs(
    parity_broker: EmbeddedBroker, kafkajs: Any, names: Any
) -> None:
    js = kafkajs(
        "producer_admin.js",
        {"brokers": [parity_broker.bootstrap], "topic": names("t"), "group": names("g")},
    )
    topic, group = names("t"), names("g")
    kafka = Kafka(brokers=[parity_broker.bootstrap])
    record: dict[str, Any] = {}
    async with kafka.admin() as admin, kafka.producer() as producer:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])
        for partition in (0, 1):
            await producer.send(topic=topic, messages=[{"value": b"x", "partition": partition}] * 4)
        record["cluster"] = await admin.describe_cluster()
        deleted = await admin.delete_topic_records(
            topic=topic,
            partitions=[{"partition": 0, "offset": 3}, {"partition": 1, "offset": -1}],
        )
        record["delete_result"] = deleted
        record["after_delete"] = [
            {"partition": o["partition"], "low": o["low"], "high": o["high"]}
            for o in await admin.fetch_topic_offsets(topic)
        ]
        await admin.set_offsets(
            group_id=group, topic=topic, partitions=[{"partition": 0, "offset": 1}]
        )

        def shape(fetched: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                {
                    "topic": "topic" if t["topic"] == topic else t["topic"],
                    "partitions": t["partitions"],
                }
                for t in fetched
            ]

        record["fetched"] = shape(await admin.fetch_offsets(group_id=group, topics=[topic]))
        record["resolved"] = shape(
            await admin.fetch_offsets(group_id=group, topics=[topic], resolve_offsets=True)
        )
        record["after_resolve"] = shape(await admin.fetch_offsets(group_id=group, topics=[topic]))
    assert_parity(js, record)
