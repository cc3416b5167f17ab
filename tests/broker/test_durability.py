"""Group commit: data becomes visible (high watermark) and acknowledged only after fsync, one
fsync covers every append waiting at that moment, one failing log fails only its own appends,
and a log closed by a topic deletion is not a disk failure."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kio.serial import entity_reader

from klamm.broker.config import BrokerConfig
from klamm.broker.context import RequestContext, Session
from klamm.broker.durability import GroupCommit
from klamm.broker.handlers.produce import handle_produce
from klamm.broker.node import Broker
from klamm.broker.partition import Partition
from klamm.protocol.build import build
from klamm.protocol.errors import ErrorCode
from klamm.protocol.messages import RequestHeader, encode_response, request_type, response_type
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.storage.errors import LogClosed
from tests.broker.broker_helpers import FakeLog


def _partition(name: str) -> tuple[Partition, FakeLog]:
    log = FakeLog()
    return Partition(name, 0, log), log  # type: ignore[arg-type]


async def test_high_watermark_moves_only_after_fsync() -> None:
    commit = GroupCommit("fsync")
    partition, log = _partition("a")
    log.gate.clear()
    log.log_end_offset = 5
    durable = commit.appended(partition)
    await asyncio.sleep(0.05)
    assert partition.high_watermark == 0 and not durable.done()
    log.gate.set()
    await asyncio.wait_for(durable, 5)
    assert partition.high_watermark == 5
    commit.close()


async def test_appends_during_a_round_share_the_next_fsync() -> None:
    commit = GroupCommit("fsync")
    partition, log = _partition("a")
    log.gate.clear()
    log.log_end_offset = 1
    first = commit.appended(partition)
    await asyncio.sleep(0.02)
    waiting = []
    for end in range(2, 12):
        log.log_end_offset = end
        waiting.append(commit.appended(partition))
    log.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *waiting), 5)
    assert log.flushes == 2  # ten appends, one fsync
    assert partition.high_watermark == 11
    commit.close()


async def test_a_failing_log_fails_only_its_own_appends() -> None:
    commit = GroupCommit("fsync")
    good, good_log = _partition("good")
    bad, bad_log = _partition("bad")
    bad_log.fail = True
    good_log.log_end_offset = bad_log.log_end_offset = 3
    ok = commit.appended(good)
    failed = commit.appended(bad)
    await asyncio.wait_for(ok, 5)
    try:
        await asyncio.wait_for(failed, 5)
        raise AssertionError("expected the fsync failure")
    except OSError:
        pass
    assert (good.high_watermark, bad.high_watermark) == (3, 0)
    commit.close()


async def test_page_cache_policy_acknowledges_at_once() -> None:
    commit = GroupCommit("os")
    partition, log = _partition("a")
    log.log_end_offset = 4
    assert commit.appended(partition).done()
    assert partition.high_watermark == 4 and log.flushes == 0
    commit.close()


async def test_a_log_closed_under_its_fsync_is_not_a_disk_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    commit = GroupCommit("fsync")
    partition, log = _partition("deleted")
    log.closed = True
    log.log_end_offset = 2
    with caplog.at_level(logging.DEBUG, logger="klamm.broker.durability"), pytest.raises(LogClosed):
        await asyncio.wait_for(commit.appended(partition), 5)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert partition.high_watermark == 0
    commit.close()


async def test_produce_waiting_for_the_fsync_of_a_deleted_topic_answers_unknown_partition(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kafka's DelayedProduce answers UNKNOWN_TOPIC_OR_PARTITION once the partition is gone;
    this used to be KAFKA_STORAGE_ERROR with an fsync failure logged at ERROR."""
    broker = Broker(BrokerConfig(port=0, data_dir=tmp_path, flush_policy="fsync"))
    await broker.start()
    gate = threading.Event()
    try:
        broker.create_topic("doomed", 1)
        partition = broker.partition("doomed", 0)
        assert partition is not None
        real_flush = partition.log.flush

        def flush_after_the_deletion() -> None:
            gate.wait(5)
            real_flush()

        monkeypatch.setattr(partition.log, "flush", flush_after_the_deletion)
        ctx, request = _produce_request(broker, "doomed")
        produce = asyncio.create_task(handle_produce(ctx, request))
        await asyncio.sleep(0.05)
        assert not produce.done(), "the produce waits for its fsync"
        with caplog.at_level(logging.DEBUG):
            broker.delete_topic("doomed")
            gate.set()
            response = await asyncio.wait_for(produce, 5)
        # The handler answers encoded bytes (protocol/hot_responses.py): read them as a client.
        frame = encode_response(ctx.header, response)
        decoded, _ = entity_reader(response_type(0, 8))(frame, 8)  # after size, correlation id
        result = decoded.responses[0].partition_responses[0]
        assert result.error_code == ErrorCode.unknown_topic_or_partition
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        gate.set()
        await broker.stop()


def _produce_request(broker: Broker, topic: str) -> tuple[RequestContext, object]:
    header = RequestHeader(api_key=0, api_version=8, correlation_id=1, client_id="test")
    batch = build_batch(RecordBatch([Record(0, broker.now_ms(), b"k", b"v")]))
    request = build(
        request_type(0, 8), transactional_id=None, acks=-1, timeout=5000,
        topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
    )  # fmt: skip
    return RequestContext(broker, header, Session(peer="test")), request


async def test_wait_idle_awaits_the_round_instead_of_polling() -> None:
    """wait_idle sleeps until the running round ends: no timer wakes it meanwhile (it once
    polled every millisecond)."""
    commit = GroupCommit("fsync")
    partition, log = _partition("idle")
    log.gate.clear()
    log.log_end_offset = 3
    durable = commit.appended(partition)
    loop = asyncio.get_running_loop()
    timers = 0
    call_later = loop.call_later

    def counting_call_later(*args: Any, **kwargs: Any) -> Any:
        nonlocal timers
        timers += 1
        return call_later(*args, **kwargs)

    loop.call_later = counting_call_later  # type: ignore[method-assign]
    try:
        idle = asyncio.ensure_future(commit.wait_idle())
        for _ in range(20):  # the loop turns while the fsync is held; wait_idle must not return
            await asyncio.sleep(0)
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.05)
        assert not idle.done()
        polled, timers = timers, 0
        log.gate.set()
        await asyncio.wait_for(idle, 5)
    finally:
        del loop.call_later  # back to the class's method
    assert durable.done() and partition.high_watermark == 3
    assert polled == 0
    commit.close()
