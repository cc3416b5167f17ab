from __future__ import annotations

import asyncio
import datetime as dt
import logging

import confluent_kafka
import pytest

from klamm import ConfigError, Event, Events, Kafka
from klamm.client.config import acks_value, client_config
from klamm.client.events import EventEmitter
from klamm.client.patterns.dlq import DLQ_HEADERS, dead_letter_headers


async def test_listeners_sync_and_async_get_the_event() -> None:
    em = EventEmitter("consumer")
    seen: list[Event] = []
    done = asyncio.Event()

    async def later(e: Event) -> None:
        seen.append(e)
        done.set()

    em.on(Events.GROUP_JOIN, seen.append)
    em.on(Events.GROUP_JOIN, later)
    em.emit(Events.GROUP_JOIN, group_id="g")
    await asyncio.wait_for(done.wait(), 1)
    assert [e.type for e in seen] == ["consumer.group_join", "consumer.group_join"]
    assert seen[0].payload == {"group_id": "g"}


async def test_remove_and_failing_listener_isolated(caplog: pytest.LogCaptureFixture) -> None:
    em = EventEmitter("producer")
    seen: list[Event] = []

    def boom(e: Event) -> None:
        raise RuntimeError("listener bug")

    em.on(Events.CONNECT, boom)
    remove = em.on(Events.CONNECT, seen.append)
    em.emit(Events.CONNECT)
    assert len(seen) == 1
    assert "listener for producer.connect failed" in caplog.text
    remove()
    em.emit(Events.CONNECT)
    assert len(seen) == 1


async def test_emit_and_wait_awaits_listeners_in_order() -> None:
    em = EventEmitter("consumer")
    order: list[str] = []

    async def slow(e: Event) -> None:
        await asyncio.sleep(0.01)
        order.append("slow")

    em.on(Events.PARTITIONS_REVOKED, slow)
    em.on(Events.PARTITIONS_REVOKED, lambda e: order.append("fast"))
    await em.emit_and_wait(Events.PARTITIONS_REVOKED, partitions=[("t", 0)])
    assert order == ["slow", "fast"]


def test_on_takes_kafkajs_event_names_and_rejects_others() -> None:
    """KafkaJS's `consumer.on("consumer.group_join", ...)` ports as it is; an unknown name (or
    another client's) is a ConfigError, as KafkaJS throws for it."""
    emitter = EventEmitter("consumer")
    seen: list[Event] = []
    emitter.on("consumer.group_join", seen.append)
    emitter.emit(Events.GROUP_JOIN, group_id="g")
    assert [e.type for e in seen] == ["consumer.group_join"]
    for wrong in ("consumer.nope", "producer.connect", "group_join", 42):
        with pytest.raises(ConfigError):
            emitter.on(wrong, print)  # type: ignore[arg-type]


def test_dead_letter_headers_keep_originals_and_replace_old_metadata() -> None:
    failed_at = int(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC).timestamp() * 1000)
    original = [("trace-id", b"t1"), ("retry-count", b"9"), ("original-topic", b"older")]
    headers = dead_letter_headers(
        original,
        topic="orders",
        partition=3,
        offset=42,
        error=ValueError("bad amount"),
        retry_count=3,
        failed_at_ms=failed_at,
    )
    assert headers[0] == ("trace-id", b"t1")
    meta = dict(headers[1:])
    assert list(meta) == list(DLQ_HEADERS)
    assert meta == {
        "original-topic": b"orders",
        "original-partition": b"3",
        "original-offset": b"42",
        "error": b"ValueError: bad amount",
        "failed-at": b"2026-01-02T03:04:05.000+00:00",
        "retry-count": b"3",
    }


def test_dead_letter_error_text_is_bounded() -> None:
    headers = dead_letter_headers(
        [],
        topic="t",
        partition=0,
        offset=0,
        error=RuntimeError("x" * 100_000),
        retry_count=0,
        failed_at_ms=0,
    )
    assert len(dict(headers)["error"] or b"") < 5_000


def test_client_config_security_protocols() -> None:
    plain = client_config(client_id="c", brokers="a:1,b:2")
    assert plain["bootstrap.servers"] == "a:1,b:2"
    assert plain["security.protocol"] == "PLAINTEXT"
    both = client_config(
        client_id="c",
        brokers=["a:1"],
        ssl={"ca_location": "/ca.pem", "check_hostname": False},
        sasl={"mechanism": "scram-sha-512", "username": "u", "password": "p"},
    )
    assert both["security.protocol"] == "SASL_SSL"
    assert both["sasl.mechanism"] == "SCRAM-SHA-512"
    assert both["ssl.ca.location"] == "/ca.pem"
    assert both["ssl.endpoint.identification.algorithm"] == "none"
    assert client_config(client_id="c", brokers="a:1", ssl=True)["security.protocol"] == "SSL"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"brokers": []},
        {"brokers": "a:1", "sasl": {"mechanism": "kerberos5"}},
        {"brokers": "a:1", "ssl": {"verify_everything": True}},
    ],
)
def test_client_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        client_config(client_id="c", **kwargs)  # type: ignore[arg-type]


def test_acks_values() -> None:
    assert [acks_value(a) for a in (-1, 0, 1, "all")] == [-1, 0, 1, -1]
    with pytest.raises(ConfigError):
        acks_value(2)


def test_a_repeated_librdkafka_error_is_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An outage makes librdkafka report _TRANSPORT many times a second (a tester counted 200
    lines for 10 s); each error is logged once per interval."""
    consumer = Kafka(brokers=["127.0.0.1:1"]).consumer(group_id="g")
    down = confluent_kafka.KafkaError(confluent_kafka.KafkaError._TRANSPORT)
    other = confluent_kafka.KafkaError(confluent_kafka.KafkaError._ALL_BROKERS_DOWN)
    with caplog.at_level(logging.WARNING, logger="klamm.client"):
        for _ in range(50):
            consumer._on_error_thread(down)
        consumer._on_error_thread(other)
    assert [r.getMessage().count("_TRANSPORT") for r in caplog.records] == [1, 0]
